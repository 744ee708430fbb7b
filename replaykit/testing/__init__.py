"""Run workflows in memory with a virtual clock: no database, no threads, microseconds per run.

>>> env = WorkflowEnvironment(activities={"charge": lambda ctx, order_id, amount: {"ok": True}})
>>> run = env.start(order, OrderInput(id="o1", sku="book", qty=1, amount=20.0))
>>> run.run_until_idle()                   # runs until it waits (here: for an event)
>>> run.send_event("payment.completed", {"order": "o1"})
>>> run.result()                           # sleeps of days pass at once on the virtual clock
>>> run.history                            # the recorded history events

``replay_check(workflow, history)`` replays a stored history against the current code and reports
non-determinism before a deploy.

The pieces, one module each, each using only those before it: :mod:`.clock` (the virtual clock),
:mod:`.activity` (what activities see), :mod:`.store` (the database's delivery rules in memory),
:mod:`.run` (one instance: :class:`TestRun`), :mod:`.executor` (runs instances the way a
production worker does, applying the effects that ``replaykit.core.effects`` plans),
:mod:`.environment` (:class:`WorkflowEnvironment`) and :mod:`.replay` (:func:`replay_check`).
"""

from __future__ import annotations

from ..core.failures import raise_as
from .activity import OutboxRecorder, TestActivityContext
from .clock import DEFAULT_START as DEFAULT_START
from .clock import VirtualClock
from .environment import WorkflowEnvironment
from .replay import ReplayCheck, replay_check
from .run import TestRun, WorkflowStuck

__all__ = [
    "OutboxRecorder",
    "ReplayCheck",
    "TestActivityContext",
    "TestRun",
    "VirtualClock",
    "WorkflowEnvironment",
    "WorkflowStuck",
    "raise_as",
    "replay_check",
]
