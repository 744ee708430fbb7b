"""``@workflow`` and ``@activity`` definitions and the registry that finds them by name.

>>> @activity
... def add(ctx, a: int, b: int) -> int:
...     return a + b
>>> add(1, 2).name            # calling an activity makes a command; it does not run it
'add'
"""

from __future__ import annotations

import builtins
import hashlib
import inspect
import reprlib
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, get_type_hints, overload

from .codec import convert, to_builtins
from .commands import ActivityCall, Command, ParentClose, StartChild
from .errors import InvalidInput, UnknownWorkflow
from .retry import RetryPolicy
from .validation import check_id

P = ParamSpec("P")
R = TypeVar("R")
I = TypeVar("I")  # noqa: E741 - input type

WorkflowGenerator = Generator[Command, Any, R]


class ActivityContext(Protocol):
    """What an activity receives as ``ctx`` (implemented by the runtime and by ``testing``)."""

    instance_id: str
    step: int
    attempt: int

    @property
    def session(self) -> Any:
        """The database transaction the activity's result is recorded in (transactional only)."""

    @property
    def outbox(self) -> Any:
        """Send CloudEvents that commit with this activity (``ctx.outbox.send(event)``)."""

    def heartbeat(self) -> None:
        """Tell the runtime the activity is alive (extends the instance's lease)."""


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to no types
        return {}


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    params = list(inspect.signature(fn).parameters.values())
    return bool(params) and params[0].name in ("ctx", "context", "_ctx")


class Activity(Generic[P, R]):
    """A registered activity. Call it inside a workflow to get an :class:`ActivityCall`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        compensate: Activity[Any, Any] | Callable[..., Any] | None = None,
        transactional: bool = True,
        timeout: float | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.retry = retry
        self.transactional = transactional
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_ctx = _takes_ctx(fn)
        self.result_type: Any = _hints(fn).get("return", Any)
        if compensate is not None and not isinstance(compensate, Activity):
            compensate = Activity(compensate, retry=retry)
        self.compensate: Activity[Any, Any] | None = compensate
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> ActivityCall[R]:
        return ActivityCall(
            name=self.name,
            args=args,
            kwargs=kwargs,
            retry=self.retry,
            compensation=self.compensate.name if self.compensate else None,
            transactional=self.transactional,
            timeout=self.timeout,
            result_type=self.result_type,
            definition=self,
        )

    def with_options(
        self, *, retry: RetryPolicy | None = None, timeout: float | None = None
    ) -> Activity[P, R]:
        """A copy of this activity with another retry policy or timeout."""
        return Activity(
            self.fn,
            name=self.name,
            retry=retry or self.retry,
            compensate=self.compensate,
            transactional=self.transactional,
            timeout=timeout if timeout is not None else self.timeout,
        )

    def __repr__(self) -> str:
        return f"<activity {self.name}>"


class Workflow(Generic[I, R]):
    """A registered workflow: a generator function ``fn(ctx[, input])`` that yields commands."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, version: str | None = None
    ) -> None:
        if not inspect.isgeneratorfunction(fn):
            raise TypeError(
                f"@workflow {fn.__qualname__} must be a generator function (use 'yield')"
            )
        params = list(inspect.signature(fn).parameters.values())
        if not 1 <= len(params) <= 2:
            raise TypeError(f"@workflow {fn.__qualname__} must take (ctx) or (ctx, input)")
        hints = _hints(fn)
        self.fn = fn
        #: stored with every instance: an id (at most 255 characters, see core.validation)
        self.name = check_id(fn.__name__ if name is None else name, "workflow name")
        self.takes_input = len(params) == 2
        self.input_type: Any = hints.get(params[1].name, Any) if self.takes_input else None
        self.result_type: Any = _generator_return_type(hints.get("return"))
        #: the code's version, recorded on every instance it starts (see docs/versioning.md)
        self.version = _checked_version(fn, version) if version is not None else code_version(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def decode_input(self, raw: Any) -> Any:
        """Convert stored JSON input to the annotated input type (or raise InvalidInput)."""
        return convert(raw, self.input_type, what=f"input of workflow {self.name!r}")

    def encode_input(self, value: Any) -> Any:
        """Encode ``value`` to JSON builtins, checking that it decodes to the input type. A
        workflow that takes no input (``fn(ctx)``) accepts only None: anything else would be
        dropped, so it is InvalidInput (argument ``"input"``)."""
        if not self.takes_input:
            if value is not None:
                raise InvalidInput(
                    f"workflow {self.name!r} takes no input ({self.fn.__qualname__}(ctx)) but "
                    f"was given {reprlib.repr(value)}: leave the input out, or give the workflow "
                    "an input parameter",
                    argument="input",
                )
            return None
        raw = to_builtins(value, what=f"input of workflow {self.name!r}")
        self.decode_input(raw)
        return raw

    def decode_result(self, raw: Any) -> Any:
        """Convert a stored result to the annotated return type."""
        return convert(raw, self.result_type, what=f"result of workflow {self.name!r}")

    def child(
        self,
        input: Any = None,
        *,
        instance_id: str | None = None,
        timeout: float | None = None,
        parent_close: ParentClose = "cancel",
    ) -> StartChild[R]:
        """A command that starts this workflow as a child and waits for its result (``timeout``:
        the child's deadline in seconds; ``parent_close``: see :class:`StartChild`)."""
        return StartChild(
            workflow=self.name,
            input=input,
            instance_id=instance_id,
            result_type=self.result_type,
            timeout=timeout,
            parent_close=parent_close,
        )

    def start_child(
        self,
        input: Any = None,
        *,
        instance_id: str | None = None,
        timeout: float | None = None,
        parent_close: ParentClose = "cancel",
    ) -> StartChild[R]:
        """A command that starts this workflow as a child without waiting; yields its id. By
        default the child is cancelled when the parent's run ends (``parent_close``, see
        :class:`StartChild`): pass ``parent_close="abandon"`` for one that outlives it."""
        return StartChild(
            workflow=self.name,
            input=input,
            instance_id=instance_id,
            wait=False,
            timeout=timeout,
            parent_close=parent_close,
        )

    def __call__(self, *args: Any) -> Generator[Command, Any, R]:
        gen: Generator[Command, Any, R] = self.fn(*args)
        return gen

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


def code_version(fn: Callable[..., Any]) -> str:
    """The default version of a workflow's code: the first 12 hex digits of the SHA-256 of the
    function's source (of its compiled code when the source cannot be read, e.g. ``exec``).
    Any change to the function's text, comments included, gives a new version; a change to an
    activity it calls does not (give ``@workflow(version=...)`` to decide yourself)."""
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        text = _code_bytes(fn.__code__)
    return hashlib.sha256(text).hexdigest()[:12]


def _code_bytes(code: Any) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        is_code = hasattr(const, "co_code")
        parts.append(_code_bytes(const) if is_code else repr(const).encode())
    return b"\0".join(parts)


def _checked_version(fn: Callable[..., Any], version: object) -> str:
    if not isinstance(version, str) or not version.strip() or len(version) > 100:
        raise TypeError(
            f"@workflow {fn.__qualname__}: version must be a non-empty string of at most 100 "
            f"characters, not {version!r}"
        )
    return version


def _generator_return_type(hint: Any) -> Any:
    args = getattr(hint, "__args__", None)
    if args and len(args) == 3:
        return args[2]
    return Any


class Registry:
    """Workflows, activities and error types by name."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.activities: dict[str, Activity[Any, Any]] = {}
        self.errors: dict[str, type[BaseException]] = {}

    def add_workflow(self, wf: Workflow[Any, Any]) -> None:
        self.workflows[wf.name] = wf

    def add_activity(self, act: Activity[Any, Any]) -> None:
        self.activities[act.name] = act
        if act.compensate is not None:
            self.activities.setdefault(act.compensate.name, act.compensate)

    def workflow(self, name: str) -> Workflow[Any, Any]:
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise UnknownWorkflow(
                f"no workflow named {name!r} is registered (registered: {known}); "
                "decorate it with @workflow and register it with the App"
            ) from None

    def activity(self, name: str) -> Activity[Any, Any]:
        try:
            return self.activities[name]
        except KeyError:
            raise UnknownWorkflow(f"no activity named {name!r} is registered") from None

    def register_error(self, cls: type[BaseException]) -> type[BaseException]:
        """Make ``cls`` resolvable by name, so replayed failures are raised as that type."""
        self.errors[f"{cls.__module__}.{cls.__qualname__}"] = cls
        return cls

    def resolve_error(self, type_name: str) -> type[BaseException] | None:
        """The class registered (or built in) under ``type_name``, or None."""
        found = self.errors.get(type_name)
        if found is not None:
            return found
        module, _, short = type_name.rpartition(".")
        if module == "builtins":
            candidate = getattr(builtins, short, None)
            if isinstance(candidate, type) and issubclass(candidate, BaseException):
                return candidate
        return _imported_error(type_name)


def _imported_error(type_name: str) -> type[BaseException] | None:
    """The exception class named ``module.Qual.Name`` if its module is imported (never imports)."""
    parts = type_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        found: Any = sys.modules.get(".".join(parts[:cut]))
        if found is None:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
        return None
    return None


default_registry = Registry()


class _ActivityDecorator(Protocol):
    """What ``@activity(...)`` with options returns: keeps the decorated function's result type."""

    @overload
    def __call__(self, fn: Callable[..., Coroutine[Any, Any, R]], /) -> Activity[..., R]: ...
    @overload
    def __call__(self, fn: Callable[..., R], /) -> Activity[..., R]: ...


# Coroutine (not Awaitable) in the first overload: with Awaitable, mypy finds both overloads
# matching an ``async def`` whose signature mentions Any and infers Activity[Any, Any].
@overload
def activity(fn: Callable[..., Coroutine[Any, Any, R]], /) -> Activity[..., R]: ...
@overload
def activity(fn: Callable[..., R], /) -> Activity[..., R]: ...
@overload
def activity(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    compensate: Activity[Any, Any] | Callable[..., Any] | None = None,
    transactional: bool = True,
    timeout: float | None = None,
) -> _ActivityDecorator: ...


def activity(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    compensate: Activity[Any, Any] | Callable[..., Any] | None = None,
    transactional: bool = True,
    timeout: float | None = None,
) -> Any:
    """Declare an activity: a sync or async function whose result is recorded.

    >>> @activity(retry=RetryPolicy(max_attempts=5), transactional=False)
    ... async def charge(ctx, order_id: str, amount: float) -> dict:
    ...     return {"order": order_id, "charged": amount}

    ``compensate`` names the activity that undoes this one (saga); it is called with the same
    arguments, and ``ctx.compensating_result`` holds what this activity returned.
    """

    def make(f: Callable[..., Any]) -> Activity[..., Any]:
        act: Activity[..., Any] = Activity(
            f,
            name=name,
            retry=retry,
            compensate=compensate,
            transactional=transactional,
            timeout=timeout,
        )
        default_registry.add_activity(act)
        return act

    return make(fn) if fn is not None else make


@overload
def workflow(fn: Callable[..., Generator[Any, Any, R]], /) -> Workflow[Any, R]: ...
@overload
def workflow(
    *, name: str | None = None, version: str | None = None
) -> Callable[[Callable[..., Generator[Any, Any, Any]]], Workflow[Any, Any]]: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
) -> Any:
    """Declare a workflow: a generator ``fn(ctx, input)`` that yields commands.

    >>> @workflow
    ... def greet(ctx, name: str):
    ...     text = yield format_greeting(name)
    ...     return text

    ``version`` names this code's version, recorded on every instance it starts (default: a
    hash of the function's source, see :func:`code_version`).
    """

    def make(f: Callable[..., Any]) -> Workflow[Any, Any]:
        wf: Workflow[Any, Any] = Workflow(f, name=name, version=version)
        default_registry.add_workflow(wf)
        return wf

    return make(fn) if fn is not None else make


def register_error(cls: type[BaseException]) -> type[BaseException]:
    """Class decorator: let replayed activity failures be raised as ``cls`` (``except cls`` works).

    Exceptions defined in importable modules are found without this; use it for local classes.
    """
    return default_registry.register_error(cls)
