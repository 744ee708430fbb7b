"""Commands are data: frozen Structs with an identity that replay compares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from replaykit import (
    ActivityCall,
    All,
    AnyOf,
    InvalidInput,
    Publish,
    Receive,
    RetryPolicy,
    SideEffect,
    Sleep,
    SleepUntil,
    Subscribe,
    WaitEvent,
    activity,
)
from replaykit.core.decisions import Decision

calls: list[Any] = []


@activity(name="cmd_undo")
def cmd_undo(ctx: Any, sku: str) -> None:
    return None


@activity(name="cmd_reserve", retry=RetryPolicy(max_attempts=7), compensate=cmd_undo)
def cmd_reserve(ctx: Any, sku: str, qty: int = 1) -> str:
    calls.append(sku)
    return f"r-{sku}"


def test_calling_an_activity_makes_a_command_and_runs_nothing() -> None:
    call = cmd_reserve("book", qty=2)
    assert calls == []
    assert isinstance(call, ActivityCall)
    assert (call.name, call.args, call.kwargs) == ("cmd_reserve", ("book",), {"qty": 2})
    assert call.retry == RetryPolicy(max_attempts=7)
    assert call.compensation == "cmd_undo"
    assert call.result_type is str


def test_commands_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Sleep(1).seconds = 2  # type: ignore[misc]


def test_sleep_stores_float_seconds_and_rejects_negative() -> None:
    assert Sleep(60).seconds == 60.0
    with pytest.raises(ValueError, match="negative"):
        Sleep(-1)


def test_sleep_until_converts_an_aware_datetime_to_a_timestamp() -> None:
    when = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert SleepUntil(when).at == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def test_sleep_until_rejects_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SleepUntil(datetime(2026, 1, 1))


def test_subscribe_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="broadcast"):
        Subscribe("orders", mode="everyone")  # type: ignore[arg-type]


def test_activity_identity_includes_an_argument_fingerprint() -> None:
    kind, name, fp = cmd_reserve("book").identity()
    assert (kind, name) == ("ActivityCall", "cmd_reserve")
    assert fp == cmd_reserve("book").identity()[2]
    assert fp != cmd_reserve("pen").identity()[2]


def test_fingerprint_ignores_keyword_order() -> None:
    a = ActivityCall(name="x", kwargs={"a": 1, "b": 2})
    b = ActivityCall(name="x", kwargs={"b": 2, "a": 1})
    assert a.args_fingerprint() == b.args_fingerprint()


def test_fingerprint_of_unencodable_arguments_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="arguments of activity 'x'"):
        ActivityCall(name="x", args=(object(),)).args_fingerprint()


def test_identity_of_waits_names_what_they_wait_for() -> None:
    assert WaitEvent("paid", timeout=5).identity() == ("WaitEvent", "paid", "")
    assert Receive("inbox").identity() == ("Receive", "inbox", "")
    assert Publish("orders", {"x": 1}).identity() == ("Publish", "orders", "")
    assert Subscribe("orders", mode="competing").identity() == ("Subscribe", "orders", "competing")


def test_describe_is_kind_and_name() -> None:
    assert cmd_reserve("book").describe() == "ActivityCall 'cmd_reserve'"
    assert Sleep(1).describe() == "Sleep"


def test_side_effect_is_named_after_its_function() -> None:
    def pick() -> int:
        return 4

    assert SideEffect(pick).name.endswith("pick")
    assert SideEffect(pick, name="dice").name == "dice"


def test_groups_keep_members_as_a_tuple_and_count_them_in_identity() -> None:
    group = All([Sleep(1), Sleep(2)])
    assert group.members == (Sleep(1), Sleep(2))
    assert group.identity() == ("All", "", "2")
    assert AnyOf([Sleep(1)]).identity() == ("Any", "", "1")


def test_yield_from_a_command_yields_it_once_and_returns_what_is_sent() -> None:
    gen = iter(Sleep(5))
    assert next(gen) == Sleep(5)
    with pytest.raises(StopIteration) as stop:
        gen.send("sent back")
    assert stop.value.value == "sent back"


def test_commands_encode_with_a_command_tag() -> None:
    assert msgspec.json.decode(msgspec.json.encode(Sleep(2))) == {
        "command": "Sleep",
        "seconds": 2.0,
    }


def test_decision_is_finished_only_in_a_terminal_status() -> None:
    assert not Decision().finished
    for status in ("completed", "failed", "cancelled", "continued"):
        assert Decision(status=status).finished  # type: ignore[arg-type]


class TestRetryPolicy:
    def test_backoff_grows_by_the_coefficient_up_to_the_cap(self) -> None:
        policy = RetryPolicy(initial_interval=1, backoff_coefficient=3, max_interval=5)
        assert [policy.delay_before(a) for a in (2, 3, 4, 5)] == [1.0, 3.0, 5.0, 5.0]

    def test_attempts_are_bounded(self) -> None:
        policy = RetryPolicy(max_attempts=2)
        assert policy.allows_retry(attempt=1, type_name="builtins.OSError", retryable=True)
        assert not policy.allows_retry(attempt=2, type_name="builtins.OSError", retryable=True)

    def test_non_retryable_matches_short_or_qualified_names(self) -> None:
        short = RetryPolicy(non_retryable=("ValueError",))
        qualified = RetryPolicy(non_retryable=("builtins.ValueError",))
        for policy in (short, qualified):
            assert not policy.allows_retry(
                attempt=1, type_name="builtins.ValueError", retryable=True
            )
            assert policy.allows_retry(attempt=1, type_name="builtins.KeyError", retryable=True)

    def test_a_non_retryable_error_is_never_retried(self) -> None:
        assert not RetryPolicy().allows_retry(attempt=1, type_name="x.E", retryable=False)

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_attempts": 0}, {"initial_interval": -1}, {"backoff_coefficient": 0.5}],
    )
    def test_invalid_policies_are_rejected(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="RetryPolicy"):
            RetryPolicy(**kwargs)
