"""Channels: broadcast (every subscriber, from its subscription on), competing (exactly one
subscriber: the one waiting longest), both modes on one channel, SendTo between instances,
Publish from a workflow with metadata, Unsubscribe, Receive with a timeout.

Pins an earlier disagreement: in memory a competing channel once handed a message to one
subscriber of any mode, where the databases give it to every broadcast subscriber plus one
competing subscriber."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from replaykit import (
    EventTimeout,
    Publish,
    Receive,
    SendTo,
    Sleep,
    Subscribe,
    Unsubscribe,
    WaitEvent,
    workflow,
)

from ..harness import Advance, PublishMessage, Scenario, SendEvent, SendMessage, StartWorkflow


@workflow(name="d_listener")
def d_listener(ctx: Any, spec: dict[str, Any]) -> Generator[Any, Any, list[Any]]:
    """Subscribe to ``spec["channel"]`` in ``spec["mode"]`` and receive ``spec["count"]``
    messages (each within ``spec["timeout"]`` seconds, if given)."""
    yield Subscribe(spec["channel"], mode=spec["mode"])
    got: list[Any] = []
    for _ in range(spec["count"]):
        try:
            message = yield Receive(spec["channel"], timeout=spec.get("timeout"))
        except EventTimeout:
            got.append("timed out")
        else:
            got.append([message.data, message.metadata, message.sender])
    return got


@workflow(name="d_talker")
def d_talker(ctx: Any, peer: str) -> Generator[Any, Any, Any]:
    """Publish to the room with metadata, send the peer a direct message, unsubscribe after the
    first room message, then wait for the peer's answer."""
    yield Subscribe("d-room")
    sent = yield Publish("d-room", {"hello": "room"}, metadata={"from": "talker"})
    echo = yield Receive("d-room")
    yield Unsubscribe("d-room")
    yield SendTo(peer, "d-direct", {"ping": 1})
    answer = yield Receive("d-direct", timeout=60)
    return [sent, echo.data, echo.sender, answer.data, answer.sender]


@workflow(name="d_peer")
def d_peer(ctx: Any) -> Generator[Any, Any, Any]:
    ping = yield Receive("d-direct")
    yield SendTo(ping.sender, "d-direct", {"pong": ping.data["ping"] + 1})
    yield WaitEvent("d.never", timeout=5)  # fails the peer: an uncaught EventTimeout


@workflow(name="d_late_taker")
def d_late_taker(ctx: Any) -> Generator[Any, Any, Any]:
    """Subscribe competing, sleep, then take one message if any is left."""
    yield Subscribe("d-pool", mode="competing")
    yield Sleep(10)
    try:
        message = yield Receive("d-pool", timeout=5)
    except EventTimeout:
        return "nothing left"
    return message.data


def _listener(channel: str, mode: str, count: int, timeout: float | None = None) -> Any:
    return {"channel": channel, "mode": mode, "count": count, "timeout": timeout}


SCENARIOS = [
    Scenario(
        # Both wake at the same moment; the one that runs first takes the message. A database
        # runs instances made runnable at the same time in id order, whatever order their
        # timers were set in; so does memory (it once ran them in timer order).
        "channel_competing_taken_by_the_first_to_run_after_timers_due_together",
        workflows=(d_late_taker,),
        script=(
            StartWorkflow("d_late_taker", "taker-b"),
            StartWorkflow("d_late_taker", "taker-a"),
            PublishMessage("d-pool", {"job": "one"}),
            Advance(20),
        ),
        expect={"taker-a": "completed", "taker-b": "completed"},
    ),
    Scenario(
        "channel_broadcast_from_subscription_on",
        workflows=(d_listener,),
        script=(
            StartWorkflow("d_listener", "b-1", _listener("d-news", "broadcast", 2)),
            PublishMessage("d-news", {"n": 1}, {"k": "v"}),
            StartWorkflow("d_listener", "b-2", _listener("d-news", "broadcast", 2, 100)),
            PublishMessage("d-news", {"n": 2}),
            PublishMessage("d-news", {"n": 3}),
            Advance(101),
        ),
        expect={"b-1": "completed", "b-2": "completed"},
    ),
    Scenario(
        "channel_competing_one_receiver_each_plus_every_broadcast_subscriber",
        workflows=(d_listener,),
        script=(
            StartWorkflow("d_listener", "c-b", _listener("d-jobs", "broadcast", 3, 50)),
            StartWorkflow("d_listener", "c-2", _listener("d-jobs", "competing", 1, 50)),
            StartWorkflow("d_listener", "c-1", _listener("d-jobs", "competing", 2, 50)),
            PublishMessage("d-jobs", {"job": 1}),
            PublishMessage("d-jobs", {"job": 2}),
            PublishMessage("d-jobs", {"job": 3}),
            Advance(51),
            PublishMessage("d-jobs", {"job": 4}),
            Advance(51),
        ),
        expect={"c-b": "completed", "c-1": "completed", "c-2": "completed"},
    ),
    Scenario(
        "channel_competing_message_kept_for_a_later_receiver",
        workflows=(d_listener,),
        script=(
            PublishMessage("d-queue", {"job": "before anyone"}),
            StartWorkflow("d_listener", "q-1", _listener("d-queue", "competing", 1, 10)),
            PublishMessage("d-queue", {"job": "kept"}),
            StartWorkflow("d_listener", "q-2", _listener("d-queue", "competing", 1, 10)),
            Advance(11),
        ),
        expect={"q-1": "completed", "q-2": "completed"},
    ),
    Scenario(
        "channel_send_to_publish_metadata_unsubscribe",
        workflows=(d_talker, d_peer),
        script=(
            StartWorkflow("d_peer", "peer"),
            StartWorkflow("d_talker", "talker", "peer"),
            PublishMessage("d-room", {"after": "unsubscribe"}),
            SendMessage("peer", "d-direct", {"ignored": True}),
            Advance(10),
        ),
        expect={"talker": "completed", "peer": "failed"},
    ),
    Scenario(
        "channel_direct_message_before_receive",
        workflows=(d_listener,),
        script=(
            StartWorkflow("d_listener", "direct-1", _listener("d-inbox", "broadcast", 3, 5)),
            SendMessage("direct-1", "d-inbox", {"first": 1}),
            SendMessage("direct-1", "d-inbox", {"second": 2}),
            SendEvent("d.unrelated", instance_id="direct-1"),
            Advance(6),
        ),
        expect={"direct-1": "completed"},
    ),
]
