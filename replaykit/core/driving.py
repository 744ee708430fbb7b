"""Driving the workflow generator: send each outcome in, number and register what it yields.

Every yielded command gets a step number when yielded; members of ``All``/``Any`` get their own
numbers right after the group's, and retries never consume numbers, so later steps never shift.
The hot path of replay (an activity result followed by another plain activity call) is inlined in
:meth:`GeneratorDriver._continue_after`.
"""

from __future__ import annotations

from typing import Any

from .bookkeeping import Group, Pending
from .codec import PLAIN_TYPES, fingerprint, to_builtins
from .commands import (
    MEMBER_TYPES,
    ActivityCall,
    All,
    AnyOf,
    Command,
    Compensate,
    Patched,
    PatchMarker,
    Recur,
    RetryTimer,
    StartChild,
)
from .compensation import Compensation
from .errors import InvalidCommand, InvalidInput
from .history import StepEvent
from .matching import Location, is_marker_for

_ITER_CODES = frozenset(
    cls.__iter__.__code__ for cls in (Command, ActivityCall, StartChild, All, AnyOf)
)


class GeneratorDriver(Compensation):
    """Runs the workflow generator between outcomes and settles commands and groups."""

    def _advance(self, value: Any = None, error: BaseException | None = None) -> None:
        gen = self._gen
        assert gen is not None
        self._blocked_on = None
        while True:
            try:
                command = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                self._complete(stop.value)
                return
            except Exception as exc:
                self._fail(exc)
                return
            value, error = None, None
            immediate = self._on_yield(command, self._location())
            if immediate is None:
                return
            value, error = immediate

    def _continue_after(self, step: int, value: Any) -> None:
        """Hot path of replay: the generator waits on ``step``, which just succeeded with
        ``value``. Send it and, when the next command is a plain activity call, register it
        inline; everything else takes the general path (:meth:`_on_yield`)."""
        del self._pending[step]
        self._out.pop(step, None)
        self._blocked_on = None
        gen = self._gen
        assert gen is not None
        try:
            command = gen.send(value)
        except StopIteration as stop:
            self._complete(stop.value)
            return
        except Exception as exc:
            self._fail(exc)
            return
        location = self._location()
        if type(command) is ActivityCall and not command.kwargs:
            args = command.args
            if all(type(a) in PLAIN_TYPES for a in args):
                nxt = self._next_step
                self._next_step = nxt + 1
                p = Pending(nxt, command, None, location, fingerprint(args, {}))
                self._pending[nxt] = p
                self._out[nxt] = p
                self._blocked_on = nxt
                return
        immediate = self._on_yield(command, location)
        if immediate is not None:
            self._advance(*immediate)

    def _location(self) -> Location | None:
        gen: Any = self._gen
        frame = gen.gi_frame
        inner = gen.gi_yieldfrom
        if inner is None or (inner.gi_frame is not None and inner.gi_frame.f_code in _ITER_CODES):
            return (frame.f_code.co_filename, frame.f_lineno)
        frame = None
        while gen is not None and getattr(gen, "gi_frame", None) is not None:
            code = gen.gi_frame.f_code
            if code.co_name != "__iter__" or "replaykit" not in code.co_filename:
                frame = gen.gi_frame
            gen = getattr(gen, "gi_yieldfrom", None)
        if frame is None:
            return None
        return (frame.f_code.co_filename, frame.f_lineno)

    def _on_yield(self, command: Any, location: Location | None) -> tuple[Any, Any] | None:
        """Register a yielded command; return (value, error) to send back at once, or None."""
        if type(command) is ActivityCall:  # the common case, without further checks
            step = self._next_step
            self._next_step = step + 1
            failure = self._register(step, command, None, location)
            if failure is not None:
                return None, failure
            self._blocked_on = step
            return None
        if not isinstance(command, Command) or isinstance(command, RetryTimer | Compensate):
            return None, InvalidCommand(
                f"workflow {self.workflow.name!r} yielded {command!r}, which is not a command; "
                "yield an activity call, Sleep, WaitEvent, All, ... (see replaykit commands)"
            )
        if isinstance(command, Recur):
            return self._recur(command)
        if isinstance(command, PatchMarker) and command.id in self._patches:
            taken = self._patches[command.id]  # decided at its first point: no step, no marker
            return (taken if isinstance(command, Patched) else None), None
        step = self._next_step
        self._next_step += 1
        if isinstance(command, All | AnyOf):
            return self._open_group(step, command, location)
        failure = self._register(step, command, None, location)
        if failure is not None:
            return None, failure
        self._blocked_on = step
        if isinstance(command, PatchMarker):
            self._marker = self._pending[step]
        return None

    def _decide_marker(self, event: object) -> None:
        """Before ``event`` is applied: it decides the undecided ``Patched``/``DeprecatePatch``
        the generator waits on. Its marker takes the patch (its handler resolves the step); an
        outcome of an earlier step leaves it undecided; any other event means the code that
        recorded it had no patch here (see :meth:`_pass_marker`),
        and then applies to whatever the generator yields next, possibly another marker."""
        while (p := self._marker) is not None:
            command: PatchMarker = p.command  # type: ignore[assignment]
            if is_marker_for(event, p.step, command.id):
                return
            if isinstance(event, StepEvent) and event.step < p.step:
                # the late outcome of an earlier command (a loser of an Any left running, say)
                # says nothing about the code at the marker's step: it stays undecided
                return
            self._pass_marker()

    def _pass_marker(self) -> None:
        """History has no marker at the undecided ``Patched``/``DeprecatePatch``: ``Patched`` is
        false, and the step is given back (a patch not taken consumes no step, so the later steps
        of instances from before the patch keep their numbers). The generator goes on at once."""
        p = self._marker
        assert p is not None
        self._marker = None
        command: PatchMarker = p.command  # type: ignore[assignment]
        self._patches[command.id] = False
        del self._pending[p.step]
        self._out.pop(p.step, None)
        self._next_step = p.step
        self._advance(False if isinstance(p.command, Patched) else None)

    def _open_group(
        self, step: int, command: All | AnyOf, location: Location | None
    ) -> tuple[Any, Any] | None:
        members = list(command.members)
        for member in members:
            if not isinstance(member, MEMBER_TYPES):
                return None, InvalidCommand(
                    f"{type(command).__name__} members must be activity calls, Sleep, SleepUntil, "
                    f"WaitEvent, Receive or child workflows, not {member!r}"
                )
        if not members:
            if isinstance(command, AnyOf):
                return None, InvalidCommand("Any needs at least one member")
            return [], None
        steps = list(range(self._next_step, self._next_step + len(members)))
        self._next_step += len(members)
        self._groups[step] = Group(step, command, steps)
        for member_step, member in zip(steps, members, strict=True):
            failure = self._register(member_step, member, step, location)
            if failure is not None:
                for s in steps:
                    self._pending.pop(s, None)
                    self._out.pop(s, None)
                    self._children.pop(s, None)
                del self._groups[step]
                return None, failure
        self._blocked_on = step
        return None

    def _recur(self, command: Recur) -> tuple[Any, Any] | None:
        try:
            self.recur_input = self.workflow.encode_input(command.input)
        except InvalidInput as exc:
            return None, exc
        self._abandon_all()
        self._close_children("recurred")
        assert self._gen is not None
        self._gen.close()
        self._end("continued")
        return None

    def _complete(self, value: Any) -> None:
        try:
            self.result = to_builtins(value, what=f"result of workflow {self.workflow.name!r}")
        except InvalidInput as exc:
            self._fail(exc)
            return
        self._abandon_all()
        self._close_children("completed")
        self._end("completed")

    # ------------------------------------------------------------------ outcomes

    def _resolve(self, p: Pending, ok: bool, value: Any) -> None:
        del self._pending[p.step]
        self._out.pop(p.step, None)
        if p.group is not None:
            self._member_settled(p, ok, value)
        elif isinstance(p.command, Compensate):
            self._next_compensation()
        elif self._blocked_on == p.step:
            self._advance(value if ok else None, None if ok else value)

    def _member_settled(self, p: Pending, ok: bool, value: Any) -> None:
        group = self._groups[p.group]  # type: ignore[index]
        group.outcomes[p.step] = (ok, value)
        command = group.command
        if isinstance(command, AnyOf):
            index = group.members.index(p.step)
            self._close_group(group, cancel=command.cancel_losers)
            if ok:
                self._advance((index, value))
            else:
                self._advance(None, value)
            return
        if len(group.outcomes) < len(group.members):
            return
        self._close_group(group, cancel=False)
        outcomes = [group.outcomes[s] for s in group.members]
        if command.settled:
            self._advance([v for _, v in outcomes])
            return
        failure = next((v for ok_, v in outcomes if not ok_), None)
        if failure is None:
            self._advance([v for _, v in outcomes])
        else:
            self._advance(None, failure)


__all__ = ["GeneratorDriver"]
