"""The tolerant base: OC's datetimes, sloppy numbers and key spellings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from schemas.tolerant import (
    Count,
    DecimalNumber,
    DecimalString,
    EpochMillis,
    OcDateTime,
    TolerantModel,
    format_oc_datetime,
    match_key,
    parse_oc_datetime,
)

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-11-28T20:09:57+0800", datetime(2018, 11, 28, 20, 9, 57, tzinfo=CST)),
        ("2018-11-28T20:09:57+08:00", datetime(2018, 11, 28, 20, 9, 57, tzinfo=CST)),
        ("2018-11-28T12:09:57Z", datetime(2018, 11, 28, 12, 9, 57, tzinfo=UTC)),
        ("2018-11-28T20:09:57.250+0800", datetime(2018, 11, 28, 20, 9, 57, 250000, tzinfo=CST)),
        ("2024-07-10T00:00:00+0000", datetime(2024, 7, 10, tzinfo=UTC)),
        (1588233847001, datetime(2020, 4, 30, 8, 4, 7, 1000, tzinfo=UTC)),
        ("1588233847001", datetime(2020, 4, 30, 8, 4, 7, 1000, tzinfo=UTC)),
        (1588233847, datetime(2020, 4, 30, 8, 4, 7, tzinfo=UTC)),
        ("2018-11-28+0800", datetime(2018, 11, 28, tzinfo=CST)),
        ("2018-11-28 20:09:57", datetime(2018, 11, 28, 20, 9, 57, tzinfo=UTC)),
        ("2024/07/15 19:48:37", datetime(2024, 7, 15, 19, 48, 37, tzinfo=UTC)),
    ],
)
def test_oc_datetimes_parse_into_aware_datetimes(raw: object, expected: datetime) -> None:
    parsed = parse_oc_datetime(raw)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("raw", ["", "yesterday", "2018-13-45T00:00:00+0800", True, None, []])
def test_non_datetimes_are_rejected(raw: object) -> None:
    with pytest.raises(ValueError, match=r"not an OC datetime|boolean"):
        parse_oc_datetime(raw)


def test_datetimes_are_written_in_oc_format() -> None:
    assert format_oc_datetime(datetime(2018, 11, 28, 20, 9, 57, tzinfo=CST)) == (
        "2018-11-28T20:09:57+0800"
    )
    assert format_oc_datetime(datetime(2018, 11, 28, 20, 9, 57)) == "2018-11-28T20:09:57+0000"


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, CST, timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_oc_format_round_trips(moment: datetime) -> None:
    assert parse_oc_datetime(format_oc_datetime(moment)) == moment


class Sample(TolerantModel):
    mf_sku_id: str | None = Field(None, alias="MFSKUID")
    lm_carrier_code: str | None = Field(None, alias="LMCarrierCode")
    timestamp: EpochMillis | None = None
    at: OcDateTime | None = None
    quantity: Count | None = None
    fee: DecimalNumber | None = None
    weight: DecimalString | None = None


@pytest.mark.parametrize(
    "key", ["MFSKUID", "mfSkuId", "mfskuid", "mf_sku_id", "MF-SKU-ID", "MfSkuID"]
)
def test_key_spellings_match_the_field(key: str) -> None:
    assert Sample.model_validate({key: "OC1"}).mf_sku_id == "OC1"


def test_exact_key_wins_and_the_variant_is_kept_as_unknown() -> None:
    sample = Sample.model_validate({"mfskuid": "variant", "MFSKUID": "exact"})
    assert sample.mf_sku_id == "exact"
    assert sample.extra_fields() == {"mfskuid": "variant"}


def test_unknown_fields_are_kept_and_written_back() -> None:
    sample = Sample.model_validate({"lmCarrierCode": "XDP", "brandNew": {"a": 1}})
    assert sample.lm_carrier_code == "XDP"
    assert sample.extra_fields() == {"brandNew": {"a": 1}}
    assert sample.to_oc_dict() == {"LMCarrierCode": "XDP", "brandNew": {"a": 1}}
    assert sample.first_extra("brand_new") == {"a": 1}


def test_timestamps_and_numbers_accept_strings() -> None:
    sample = Sample.model_validate(
        {"timeStamp": "123456789", "quantity": "2", "fee": "19.50", "weight": 11000}
    )
    assert sample.timestamp == 123456789
    assert sample.quantity == 2
    assert sample.fee == Decimal("19.50")
    assert sample.weight == Decimal(11000)
    assert Sample.model_validate({"timestamp": "2020-04-30T16:04:07+0800"}).timestamp == (
        1588233847000
    )


def test_numbers_keep_their_wire_form() -> None:
    sample = Sample.model_validate({"fee": 19, "weight": "11000.0000", "at": 1588233847001})
    assert sample.to_oc_dict() == {
        "fee": 19,
        "weight": "11000.0000",
        "at": "2020-04-30T08:04:07.001000+0000",
    }


def test_bad_values_fail_validation() -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"quantity": "two"})
    with pytest.raises(ValidationError):
        Sample.model_validate({"at": "not a time"})


def test_match_key_ignores_case_underscores_and_dashes() -> None:
    assert match_key("LM_Carrier-Code") == match_key("lmcarriercode") == "lmcarriercode"
