"""Delivering external events and channel messages: to waiting instances when they arrive, or to
a wait when it is registered and something is already available. Functions over an open
transaction (:class:`~storage_adapters.sql_steps.SqlTx`)."""

from __future__ import annotations

from typing import Any

from replaykit.core.errors import WorkflowNotFound
from replaykit.core.event_match import data_matches
from replaykit.core.history import (
    EventData,
    EventReceived,
    Message,
    MessageReceived,
    encode_event,
)
from replaykit.storage import (
    PublishSpec,
    StoredEvent,
    SubscriptionSpec,
    WaitSpec,
)

from .sql_steps import (
    SqlTx,
    deliver_to_inbox,
    dump_json,
    load_json,
    lock_instance,
    take_wait,
)

# -- events -------------------------------------------------------------------------------------
EVENT_COLUMNS = "id, type, source, event_id, subject, time, data, extensions"


def unknown_target(event: StoredEvent) -> WorkflowNotFound:
    return WorkflowNotFound(f"cannot send event {event.type!r}: no instance {event.target!r}")


def event_row(event: StoredEvent) -> dict[str, Any]:
    """The stored columns of ``event`` (data and extensions as JSON text), as a row reads."""
    return {
        "type": event.type,
        "source": event.source,
        "event_id": event.id,
        "subject": event.subject,
        "time": event.time,
        "data": dump_json(event.data),
        "extensions": dump_json(event.extensions),
    }


def event_data(row: dict[str, Any]) -> EventData:
    """The event of a stored row (of ``EVENT_COLUMNS``, or ``event_row``) as a workflow sees it."""
    return EventData(
        type=row["type"],
        data=load_json(row["data"]),
        id=row["event_id"],
        source=row["source"],
        subject=row["subject"],
        time=row["time"],
        extensions=load_json(row["extensions"]) or {},
    )


def event_received(row: dict[str, Any], step: int, now: float) -> bytes:
    event = event_data(row)
    return encode_event(EventReceived(step=step, name=row["type"], event=event, at=now))


def record_delivery(tx: SqlTx, instance_id: str, event_pk: int) -> None:
    tx.exec(
        "INSERT INTO rk_event_deliveries (instance_id, event_pk) VALUES (?, ?)"
        + tx.ignore_duplicate("(instance_id, event_pk)", "instance_id"),
        instance_id,
        event_pk,
    )


def send_event(tx: SqlTx, event: StoredEvent, *, now: float) -> tuple[bool, list[str]]:
    tx.lock_keys([f"event:{event.type}"])
    if event.target is not None and lock_instance(tx, event.target) is None:
        raise unknown_target(event)
    row = event_row(event)
    stored = tx.insert_id(
        f"INSERT INTO rk_events ({EVENT_COLUMNS[4:]}, target, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + tx.ignore_duplicate("", "id"),
        *(row[name] for name in EVENT_COLUMNS[4:].split(", ")),
        event.target,
        now,
    )
    if stored is None:
        return False, []
    row["id"] = stored
    woken = []
    for instance_id, waits in _event_waiters(tx, event, row["id"]).items():
        if event.target is None and lock_instance(tx, instance_id) is None:
            continue  # (a targeted event's instance is locked above)
        for step, match in waits:
            if data_matches(event.data, load_json(match)) and take_wait(tx, instance_id, step):
                record_delivery(tx, instance_id, row["id"])
                deliver_to_inbox(tx, instance_id, event_received(row, step, now), now)
                woken.append(instance_id)
                break
    return True, woken


def _event_waiters(
    tx: SqlTx, event: StoredEvent, event_pk: int
) -> dict[str, list[tuple[int, str | None]]]:
    """Event waits that may take ``event``, per instance (sorted), lowest step first."""
    if event.target is not None:
        rows = tx.rows(
            'SELECT instance_id, step, "match" FROM rk_waits '
            "WHERE kind = 'event' AND \"key\" = ? AND instance_id = ? ORDER BY step",
            event.type,
            event.target,
        )
    else:
        rows = tx.rows(
            'SELECT w.instance_id, w.step, w."match" FROM rk_waits w '
            "JOIN rk_instances i ON i.instance_id = w.instance_id "
            "WHERE w.kind = 'event' AND w.\"key\" = ? AND i.event_floor < ? "
            "ORDER BY w.instance_id, w.step",
            event.type,
            event_pk,
        )
    waiters: dict[str, list[tuple[int, str | None]]] = {}
    for row in rows:
        waiters.setdefault(row["instance_id"], []).append((row["step"], row["match"]))
    return waiters


def take_available_event(
    tx: SqlTx, instance_id: str, floor: int, wait: WaitSpec, now: float
) -> bytes | None:
    """The oldest event available to ``instance_id`` that fits ``wait``, consumed at once."""
    rows = tx.rows(
        f"SELECT {EVENT_COLUMNS} FROM rk_events e WHERE e.type = ? "
        "AND (e.target = ? OR (e.target IS NULL AND e.id > ?)) AND NOT EXISTS "
        "(SELECT 1 FROM rk_event_deliveries d WHERE d.instance_id = ? AND d.event_pk = e.id) "
        "ORDER BY e.id",
        wait.key,
        instance_id,
        floor,
        instance_id,
    )
    for row in rows:
        if data_matches(load_json(row["data"]), wait.match):
            record_delivery(tx, instance_id, row["id"])
            return event_received(row, wait.step, now)
    return None


# -- channel messages ---------------------------------------------------------------------------
MESSAGE_COLUMNS = "id, channel, data, metadata, sender"


def message_received(row: dict[str, Any], step: int, now: float) -> bytes:
    message = Message(
        channel=row["channel"],
        data=load_json(row["data"]),
        metadata=load_json(row["metadata"]) or {},
        id=row["id"],
        sender=row["sender"],
    )
    return encode_event(MessageReceived(step=step, name=row["channel"], message=message, at=now))


def claim_message(tx: SqlTx, message_id: int, instance_id: str) -> None:
    tx.exec("UPDATE rk_messages SET claimed_by = ? WHERE id = ?", instance_id, message_id)


def advance_cursor(tx: SqlTx, instance_id: str, channel: str, message_id: int) -> None:
    tx.exec(
        'UPDATE rk_subscriptions SET "cursor" = ? WHERE instance_id = ? AND channel = ? '
        'AND "cursor" < ?',
        message_id,
        instance_id,
        channel,
        message_id,
    )


def publish(tx: SqlTx, message: PublishSpec, *, now: float) -> tuple[int, list[str]]:
    """Store a message and deliver it to the waiting receivers; return (id, woken ids)."""
    tx.lock_keys([f"message:{message.channel}"])
    message_id = tx.insert_id(
        "INSERT INTO rk_messages (channel, data, metadata, sender, target, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        message.channel,
        dump_json(message.data),
        dump_json(message.metadata),
        message.sender,
        message.target,
        now,
    )
    assert message_id is not None
    stored = {
        "id": message_id,
        "channel": message.channel,
        "data": dump_json(message.data),
        "metadata": dump_json(message.metadata),
        "sender": message.sender,
    }
    if message.target is not None:
        woken = _deliver_message(tx, stored, [message.target], now, claim=True)
    else:
        woken = _deliver_message(tx, stored, _waiting_subscribers(tx, message.channel), now)
        competing = _waiting_subscribers(tx, message.channel, "competing")
        woken += _deliver_message(tx, stored, competing, now, claim=True)
    return message_id, woken


def _waiting_subscribers(tx: SqlTx, channel: str, mode: str = "broadcast") -> list[str]:
    """Subscribers of ``mode`` with a message wait on ``channel``, oldest wait first."""
    rows = tx.rows(
        "SELECT s.instance_id, MIN(w.created_at) AS since FROM rk_subscriptions s "
        "JOIN rk_waits w ON w.instance_id = s.instance_id AND w.kind = 'message' "
        'AND w."key" = s.channel WHERE s.channel = ? AND s.mode = ? '
        "GROUP BY s.instance_id ORDER BY since, s.instance_id",
        channel,
        mode,
    )
    return [row["instance_id"] for row in rows]


def _deliver_message(
    tx: SqlTx, message: dict[str, Any], receivers: list[str], now: float, *, claim: bool = False
) -> list[str]:
    """Give ``message`` to each receiver's lowest message wait on its channel (to the first
    one that takes it when ``claim``, marking the message claimed)."""
    woken = []
    for instance_id in receivers:
        if lock_instance(tx, instance_id) is None:
            continue
        steps = tx.rows(
            "SELECT step FROM rk_waits WHERE instance_id = ? AND kind = 'message' AND \"key\" = ? "
            "ORDER BY step",
            instance_id,
            message["channel"],
        )
        step = next((r["step"] for r in steps if take_wait(tx, instance_id, r["step"])), None)
        if step is None:
            continue
        if claim:
            claim_message(tx, message["id"], instance_id)
        else:
            advance_cursor(tx, instance_id, message["channel"], message["id"])
        deliver_to_inbox(tx, instance_id, message_received(message, step, now), now)
        woken.append(instance_id)
        if claim:
            break
    return woken


def take_available_message(tx: SqlTx, instance_id: str, wait: WaitSpec, now: float) -> bytes | None:
    """A direct message first, else the next message of the instance's subscription."""
    channel = wait.key
    select = f"SELECT {MESSAGE_COLUMNS} FROM rk_messages WHERE channel = ? AND "
    order = " ORDER BY id LIMIT 1{SKIP_LOCKED}"
    found = tx.one(select + "target = ? AND claimed_by IS NULL" + order, channel, instance_id)
    if found is not None:
        claim_message(tx, found["id"], instance_id)
        return message_received(found, wait.step, now)
    sub = tx.one(
        'SELECT mode, "cursor" FROM rk_subscriptions WHERE instance_id = ? AND channel = ?',
        instance_id,
        channel,
    )
    if sub is None:
        return None
    if sub["mode"] == "broadcast":
        found = tx.one(select + "target IS NULL AND id > ?" + order, channel, sub["cursor"])
        if found is not None:
            advance_cursor(tx, instance_id, channel, found["id"])
    else:
        found = tx.one(select + "target IS NULL AND claimed_by IS NULL" + order, channel)
        if found is not None:
            claim_message(tx, found["id"], instance_id)
    return None if found is None else message_received(found, wait.step, now)


def apply_subscription(tx: SqlTx, instance_id: str, sub: SubscriptionSpec, now: float) -> None:
    if not sub.subscribe:
        tx.exec(
            "DELETE FROM rk_subscriptions WHERE instance_id = ? AND channel = ?",
            instance_id,
            sub.channel,
        )
        return
    tx.exec(
        'INSERT INTO rk_subscriptions (instance_id, channel, mode, "cursor", created_at) '
        "VALUES (?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM rk_messages WHERE channel = ?), ?)"
        + tx.update_duplicate("(instance_id, channel)", "mode = ?"),
        instance_id,
        sub.channel,
        sub.mode,
        sub.channel,
        now,
        sub.mode,
    )
