"""The success answer echoes OC's messageId exactly, whatever it holds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.ingest.service import SuccessAnswer
from gateway.settings import Settings

TEMPLATE = Settings.model_fields["oc_success_response"].default


@given(st.one_of(st.text(max_size=60), st.integers(), st.from_regex(r"[A-Za-z0-9_.:-]{1,40}")))
def test_the_message_id_is_echoed_as_sent(message_id: str | int) -> None:
    answer = json.loads(SuccessAnswer(TEMPLATE).render({"messageId": message_id}))
    assert answer == {**json.loads(TEMPLATE), "messageId": message_id}


@given(
    st.one_of(
        st.none(), st.floats(), st.lists(st.integers()), st.dictionaries(st.text(), st.text())
    )
)
def test_an_id_that_is_not_text_or_a_number_is_not_echoed(message_id: Any) -> None:
    answer = json.loads(SuccessAnswer(TEMPLATE).render({"messageId": message_id}))
    assert answer == json.loads(TEMPLATE)


def test_a_body_that_is_not_an_object_gets_the_plain_answer() -> None:
    assert json.loads(SuccessAnswer(TEMPLATE).render(["x"])) == json.loads(TEMPLATE)
