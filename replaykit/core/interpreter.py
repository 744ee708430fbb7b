"""The pure interpreter: one workflow generator driven by history events (sans-I/O, like h11).

>>> interp = Interpreter(my_workflow, instance_id="order-1")
>>> decision = interp.feed([WorkflowStarted(workflow="my_workflow", instance_id="order-1")])
>>> decision.commands            # what the runtime must execute now
>>> decision = interp.feed([ActivityCompleted(step=1, name="charge", fp=..., result=...)])

Feeding a whole history at once is replay; feeding one new event is the fast path; both give the
same decisions. Every yielded command gets a step number when yielded; members of ``All``/``Any``
get their own numbers right after the group's, and retries never consume numbers, so later steps
never shift. Only a broken replay raises (:class:`NonDeterminismError`); the interpreter then stays
broken. A workflow's own failure is returned as data (``Decision(status="failed", error=...)``).

The interpreter is built in layers, one module each, every layer using only those below it:

* :mod:`.bookkeeping` -- its state: pending commands (one per step), groups, issued and cancelled
* :mod:`.compensation` -- failure, and the compensations a failure runs (sagas)
* :mod:`.driving` -- the workflow generator: step numbers, yields, groups, outcomes
* :mod:`.handlers` -- one handler per history event kind, and their table
* this module -- the public API: :class:`Interpreter`, its feed loop, and :func:`replay`

``error_info`` and ``raise_as`` (failures as data and back) live in :mod:`.failures`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .commands import ChannelMode, Command, PatchMarker
from .decisions import Decision, ScheduledCommand
from .definitions import Registry, Workflow
from .errors import InvalidCommand, NonDeterminismError, ReplayKitError
from .failures import ErrorResolver, error_info, raise_as
from .handlers import EventHandlers
from .history import Event, WorkflowStarted


class Interpreter(EventHandlers):
    """Drives one workflow generator from history events; see the module docstring."""

    def __init__(
        self,
        workflow: Workflow[Any, Any],
        *,
        instance_id: str = "",
        registry: Registry | None = None,
        error_resolver: ErrorResolver | None = None,
    ) -> None:
        super().__init__(
            workflow, instance_id=instance_id, registry=registry, error_resolver=error_resolver
        )
        self._handlers = self._handler_table()

    # ------------------------------------------------------------------ public API

    def feed(self, events: Iterable[Event], *, replaying: bool = False) -> Decision:
        """Apply ``events`` in order and return what to do next.

        With ``replaying=True`` the events are recorded history being replayed: ``ctx.is_replaying``
        is true until the last of them is applied.
        """
        if self._broken is not None:
            raise self._broken
        batch = events if isinstance(events, list | tuple) else list(events)
        last = len(batch) - 1
        try:
            for index, event in enumerate(batch):
                self.replaying = replaying and index < last
                handler = self._handlers.get(type(event))
                if handler is None:
                    raise InvalidCommand(f"not a history event: {event!r}")
                if self._marker is not None:
                    self._decide_marker(event)
                handler(self, event)
                self.events_applied += 1
        except NonDeterminismError as exc:
            self._broken = exc
            raise
        finally:
            self.replaying = False
        return self._take_decision()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def is_outstanding(self, step: int, command: Command | None = None) -> bool:
        """Whether the command at ``step`` still waits for its outcome (not resolved/abandoned).

        With ``command`` (what a decision scheduled at ``step``): also whether ``step`` still
        belongs to it, since a ``Patched``/``DeprecatePatch`` without a marker gives its step
        number to the next command."""
        p = self._pending.get(step)
        if p is None:
            return False
        return command is None or not isinstance(command, PatchMarker) or p.command is command

    def fingerprint_of(self, step: int) -> str | None:
        """The argument fingerprint of the activity call outstanding at ``step`` (None if there
        is none): what its outcome event records, already computed when it was yielded."""
        p = self._pending.get(step)
        return p.fp if p is not None and p.fp else None

    def skip_marker(self, step: int) -> Decision:
        """The shell's answer to a ``Patched``/``DeprecatePatch`` at ``step`` (planned as
        :class:`~replaykit.core.effects.SkipMarker`): history ends here without its marker and
        none will be recorded. ``Patched`` is false, the step is given back and the generator
        goes on. A step that no longer waits for a marker is left alone."""
        if self._broken is not None:
            raise self._broken
        p = self._marker
        if p is not None and p.step == step:
            self._pass_marker()
        return self._take_decision()

    def undecided_marker(self) -> ScheduledCommand | None:
        """The ``Patched``/``DeprecatePatch`` the generator waits on, which the next event decides
        (or the shell, when there is none: plan it). The shell plans it before feeding an event
        that is not the next in history (a second inbox item), so that a new instance takes the
        patch even when two events reach it at once."""
        return None if self._marker is None else self._scheduled_for(self._marker)

    @property
    def patches(self) -> dict[str, bool]:
        """The patch points this run has decided: patch id -> taken (its marker is in history,
        or was just recorded) or not (the run passed that point under code from before the
        patch: it needs the old branch)."""
        return dict(self._patches)

    @property
    def subscriptions(self) -> dict[str, ChannelMode]:
        """The channels this run's history left it subscribed to, with their mode (what a fork,
        whose history was copied, must subscribe to again in its own name)."""
        return dict(self._subscribed)

    def outstanding(self) -> list[ScheduledCommand]:
        """Every command issued and not yet resolved (what a resumed runtime must see to)."""
        return [self._scheduled_for(p) for p in self._pending.values()]


def replay(
    workflow: Workflow[Any, Any],
    history: Iterable[Event],
    *,
    registry: Registry | None = None,
    error_resolver: ErrorResolver | None = None,
) -> tuple[Interpreter, Decision]:
    """Replay a whole ``history`` against ``workflow``; raises NonDeterminismError on mismatch."""
    events = list(history)
    instance_id = events[0].instance_id if events and isinstance(events[0], WorkflowStarted) else ""
    interp = Interpreter(
        workflow, instance_id=instance_id, registry=registry, error_resolver=error_resolver
    )
    return interp, interp.feed(events, replaying=True)


__all__ = ["Interpreter", "ReplayKitError", "error_info", "raise_as", "replay"]
