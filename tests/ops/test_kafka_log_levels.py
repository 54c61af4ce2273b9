"""Log levels of aiokafka's lines: the transient broker states it retries by itself are
written at WARNING or INFO with what happens next; everything else keeps its level."""

from __future__ import annotations

import ast
import importlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from aiokafka import errors

from gateway.ops.logs import (
    KAFKA_TRANSIENT_STATES,
    KafkaState,
    KafkaStateFilter,
    configure_logging,
    kafka_state,
)
from tests.clocks import FakeClock

GROUP = "aiokafka.consumer.group_coordinator"
FETCHER = "aiokafka.consumer.fetcher"
SENDER = "aiokafka.producer.sender"
CLIENT = "aiokafka"  # aiokafka/client.py's logger
LOOKUP = "Group Coordinator Request failed: %s"
OFFSETS = "Failed fetch offsets from %s: %s"
NOT_LEADER = errors.NotLeaderForPartitionError("TopicPartition(topic='raw', partition=1)")
INFO, WARNING = logging.INFO, logging.WARNING


@pytest.mark.parametrize(
    ("logger", "message", "args", "level"),
    [
        # A new cluster creates its offsets topic on the first group look-up.
        (GROUP, LOOKUP, (errors.GroupCoordinatorNotAvailableError(),), INFO),
        (GROUP, LOOKUP, (errors.CoordinatorLoadInProgressError(),), INFO),
        (GROUP, LOOKUP, (errors.NotCoordinatorError(),), WARNING),
        (GROUP, LOOKUP, (errors.KafkaConnectionError(),), WARNING),
        (GROUP, LOOKUP, (errors.GroupAuthorizationFailedError(),), None),  # operator: ACLs
        (
            GROUP,
            "Error sending %s to node %s [%s] -- marking coordinator dead",
            ("JoinGroupRequest_v5", 1, errors.KafkaConnectionError()),
            WARNING,
        ),
        (
            GROUP,
            "Heartbeat send request failed: %s. Will retry.",
            (errors.NodeNotReadyError(),),
            WARNING,
        ),
        (GROUP, "Heartbeat session expired - marking coordinator dead", (), WARNING),
        (GROUP, "LeaveGroup request failed: %s", (errors.RequestTimedOutError(),), WARNING),
        (GROUP, "Unexpected error in coordinator routine", (), None),
        (GROUP, "Heartbeat failed: %r", (errors.KafkaError("unexpected"),), None),
        # Leader elections, and topics created a moment ago.
        (FETCHER, OFFSETS, (1, NOT_LEADER), WARNING),
        (FETCHER, OFFSETS, (1, errors.LeaderNotAvailableError()), WARNING),
        (FETCHER, OFFSETS, (1, errors.UnknownTopicOrPartitionError()), WARNING),
        (FETCHER, OFFSETS, (1, errors.TopicAuthorizationFailedError()), None),
        (FETCHER, "Failed fetch messages from %s: %s", (1, errors.RequestTimedOutError()), WARNING),
        # aiokafka passes the error class here, not an instance.
        (
            SENDER,
            "Got error produce response on topic-partition %s, retrying. Error: %s",
            ("TopicPartition(topic='state', partition=5)", errors.NotEnoughReplicasError),
            WARNING,
        ),
        (
            SENDER,
            "Could not end transaction due to unexpected error: %s",
            (errors.KafkaError,),
            None,
        ),
        (SENDER, "Unexpected error in sender routine", (), None),
        (
            CLIENT,
            'Unable connect to "%s:%s": %s',
            ("127.0.0.1", 9092, ConnectionRefusedError()),
            WARNING,
        ),
        (
            CLIENT,
            "Unable connect to node with id %s: %s",
            (1, errors.KafkaConnectionError()),
            WARNING,
        ),
        (CLIENT, "Unable to update metadata from %s", ([1],), WARNING),
        # The same words from another logger are not aiokafka's line.
        ("gateway.process", LOOKUP, (errors.GroupCoordinatorNotAvailableError(),), None),
    ],
)
def test_transient_kafka_states(
    logger: str, message: str, args: tuple[object, ...], level: int | None
) -> None:
    state = kafka_state(logger, message, args)
    assert (state.level if state else None) == level
    if state is not None:
        assert state.transient  # says what happens next


def _log_calls(module: str) -> set[str]:
    """The format strings a module of aiokafka passes to its logger."""
    source = importlib.import_module(module).__file__
    assert source is not None
    tree = ast.parse(Path(source).read_text())
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "log"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


# The aiokafka modules whose lines the table may name.
_MODULES = (
    "aiokafka.client",
    "aiokafka.conn",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.sender",
)


def _writers(logger: str, message: str) -> list[str]:
    """The aiokafka modules that write `message` through a logger named `logger`."""
    return [
        module
        for module in _MODULES
        if importlib.import_module(module).log.name == logger and message in _log_calls(module)
    ]


@pytest.mark.parametrize("state", KAFKA_TRANSIENT_STATES, ids=lambda s: s.message[:40])
def test_every_known_state_is_a_line_the_installed_aiokafka_writes(state: KafkaState) -> None:
    # After an aiokafka upgrade that rewords a line or renames a logger, this fails
    # instead of letting the line silently go back to ERROR.
    assert _writers(state.logger, state.message)


def _record(logger: str, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(logger, logging.ERROR, "aiokafka", 1, message, args, None)


def test_a_transient_line_goes_out_once_a_second_and_says_how_many_it_held_back() -> None:
    clock = FakeClock()
    states = KafkaStateFilter(logging.INFO, clock=clock)
    refused = "Unable connect to node with id %s: %s"
    metadata = "Unable to update metadata from %s"

    def passes(record: logging.LogRecord) -> bool:
        return bool(states.filter(record))

    first = _record(CLIENT, refused, 1, errors.KafkaConnectionError())
    assert passes(first)
    assert first.levelno == WARNING
    assert not hasattr(first, "repeated")
    for _ in range(40):  # a broker down: every client retries many times a second
        clock.advance(0.02)
        assert not passes(_record(CLIENT, refused, 1, errors.KafkaConnectionError()))
    assert passes(_record(CLIENT, metadata, [1]))  # another kind has its own second
    # The same words about another state (here: INFO, then WARNING) are another kind.
    assert passes(_record(GROUP, LOOKUP, errors.GroupCoordinatorNotAvailableError()))
    assert passes(_record(GROUP, LOOKUP, errors.NotCoordinatorError()))
    assert passes(_record(CLIENT, "Some other line %s", 1))  # not a transient state
    clock.advance(0.25)  # over a second since the first
    later = _record(CLIENT, refused, 1, errors.KafkaConnectionError())
    assert passes(later)
    assert later.repeated == 40  # type: ignore[attr-defined]
    clock.advance(0.5)
    assert not passes(_record(CLIENT, refused, 1, errors.KafkaConnectionError()))


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    """configure_logging() writing to a buffer; the logging setup is restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    names = ("aiokafka", "kafka", "httpx", "httpcore", "uvicorn.access")
    levels = {
        name: (logging.getLogger(name).level, logging.getLogger(name).disabled) for name in names
    }
    yield io.StringIO()
    root.handlers[:], level, config = saved
    root.setLevel(level)
    structlog.configure(**config)
    for name, (lvl, disabled) in levels.items():
        logging.getLogger(name).setLevel(lvl)
        logging.getLogger(name).disabled = disabled


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_configured_logging_writes_transient_states_lower_and_the_rest_as_is(
    stdout: io.StringIO,
) -> None:
    configure_logging("info", stdout)
    group = logging.getLogger(GROUP)
    group.error(LOOKUP, errors.GroupCoordinatorNotAvailableError())
    group.error(LOOKUP, errors.GroupAuthorizationFailedError())
    logging.getLogger(FETCHER).error(OFFSETS, 1, NOT_LEADER)

    lines = _lines(stdout)
    assert [(line["logger"], line["level"]) for line in lines] == [
        (GROUP, "info"),
        (GROUP, "error"),
        (FETCHER, "warning"),
    ]
    assert lines[0]["event"] == (
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    )
    assert "offsets topic" in str(lines[0]["transient"])
    assert "transient" not in lines[1]


def test_a_lowered_line_respects_the_configured_level(stdout: io.StringIO) -> None:
    configure_logging("warning", stdout)
    group = logging.getLogger(GROUP)
    group.error(LOOKUP, errors.GroupCoordinatorNotAvailableError())  # now INFO: dropped
    group.error("Heartbeat session expired - marking coordinator dead")  # now WARNING: kept

    assert [line["level"] for line in _lines(stdout)] == ["warning"]
