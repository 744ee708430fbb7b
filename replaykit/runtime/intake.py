"""The CloudEvents intake as the runtime sees it: the rules :meth:`App.on_event` registers, and
the ASGI app factory behind :meth:`App.asgi`, which an integration provides.

The runtime never imports an integration. ``replaykit.integrations.http`` provides its
``cloudevents_app`` when imported (:func:`provide_intake`), and declares it as the entry point
``cloudevents`` of the group ``replaykit.intake`` (``pyproject.toml``), through which
:func:`intake_factory` finds it when nothing imported it yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..core.definitions import Registry, Workflow
from ..core.errors import InvalidInput, ReplayKitError
from ..core.history import EventData
from ..core.validation import check_id


@dataclass(frozen=True)
class StartOn:
    """Start ``workflow`` for each event of ``type``.

    ``input`` makes the workflow input from the event (default: the event's data);
    ``instance_id`` is a ``str.format`` template over ``type``, ``source``, ``id`` and
    ``subject``, so redelivery of the same event is idempotent.
    """

    type: str
    workflow: Workflow[Any, Any] | str
    input: Callable[[EventData], Any] | None = None
    instance_id: str = "{type}:{source}:{id}"

    def prepare(self, registry: Registry, event: EventData) -> tuple[Workflow[Any, Any], Any, str]:
        """(workflow, input, instance id) for ``event``, the workflow found by name in
        ``registry``; raises UnknownWorkflow/InvalidInput (an input that does not encode, data
        for a workflow that takes no input, an instance id past the limit) before anything is
        stored."""
        wf = self.workflow
        if isinstance(wf, str):
            wf = registry.workflow(wf)
        value = self.input(event) if self.input is not None else event.data
        try:
            wf.encode_input(value)
        except InvalidInput as exc:
            if self.input is not None or wf.takes_input:
                raise
            raise InvalidInput(
                f"{exc} (the event's data is the input unless input= makes another: "
                "input=lambda event: None starts it without)",
                argument="input",
            ) from None
        fields = {"type": event.type, "source": event.source, "id": event.id}
        instance_id = self.instance_id.format(**fields, subject=event.subject or "")
        check_id(instance_id, "the instance id made by StartOn's template")
        return wf, value, instance_id


#: ``factory(app, *, path, max_body)`` -> an ASGI app
IntakeFactory = Callable[..., Any]
_provided: list[IntakeFactory] = []
ENTRY_POINT_GROUP = "replaykit.intake"


def provide_intake(factory: IntakeFactory) -> None:
    """Make ``factory`` what :meth:`App.asgi` builds (called by the integration that has it)."""
    _provided[:] = [factory]


def intake_factory() -> IntakeFactory:
    """The provided intake factory, else the one declared under the entry point group."""
    if not _provided:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            provide_intake(entry.load())
            break
    if not _provided:
        raise ReplayKitError(
            "App.asgi() needs the CloudEvents intake: pip install 'replaykit-durable[http]' "
            "(or use replaykit.integrations.http.cloudevents_app(app))"
        )
    return _provided[0]


__all__ = ["ENTRY_POINT_GROUP", "IntakeFactory", "StartOn", "intake_factory", "provide_intake"]
