"""Queues in the test environment: what ``storage_adapters/sql_queues.py`` does in SQL, in dicts.

The same rule decides (:func:`replaykit.core.queues.admission`), fed with the same counts: the
queue's admitted and unfinished instances (``running``; the environment is one worker, so
``mine`` is the same number), and its admission times within the rate period. Candidates go in
the same order: higher priority first, then in order of enqueueing. When the rate limit is what
stops a queue, :attr:`MemoryQueues.retry_at` is the virtual time the next one may start; the
store treats it as a timer, so ``env.advance`` and ``run.result()`` move the clock to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import DuplicateQueueKey, UnknownQueue
from ..core.queues import QueueSpec, QueueStats, admission

#: admitted and not finished: what a queue's concurrency limits count
UNFINISHED = frozenset({"pending", "running", "waiting"})


@dataclass
class Member:
    """An instance started on a queue."""

    queue: str
    priority: int
    seq: int
    dedup_key: str | None
    timeout: float | None = None  # its deadline: this long after its admission
    admitted_at: float | None = None


class MemoryQueues:
    """Declared queues and the instances started on them."""

    def __init__(self) -> None:
        self.specs: dict[str, QueueSpec] = {}
        self.members: dict[str, Member] = {}
        #: when a rate limit lets a queue with instances still queued admit again
        self.retry_at: float | None = None
        self._seq = 0

    def declare(self, spec: QueueSpec) -> None:
        self.specs[spec.name] = spec

    def check(
        self, instance_id: str, queue: str, dedup_key: str | None, status: Callable[[str], str]
    ) -> None:
        """Raise what ``Storage.enqueue`` raises for this instance, before anything is stored."""
        if queue not in self.specs:
            raise UnknownQueue(f"no queue named {queue!r}: declare it first with env.queue()")
        if dedup_key is None:
            return
        for other, member in self.members.items():
            same = member.queue == queue and member.dedup_key == dedup_key
            if same and (status(other) == "queued" or status(other) in UNFINISHED):
                raise DuplicateQueueKey(
                    f"queue {queue!r} already has an unfinished instance {other!r} with "
                    f"deduplication key {dedup_key!r}; {instance_id!r} was not enqueued",
                    queue=queue,
                    key=dedup_key,
                    instance_id=other,
                )

    def add(
        self,
        instance_id: str,
        queue: str,
        priority: int,
        dedup_key: str | None,
        timeout: float | None = None,
    ) -> None:
        self._seq += 1
        self.members[instance_id] = Member(queue, priority, self._seq, dedup_key, timeout)

    def admit(self, now: float, status: Callable[[str], str]) -> list[str]:
        """The admission step for every queue (by name): the ids to make pending."""
        admitted: list[str] = []
        retry: list[float] = []
        for name in sorted(self.specs):
            spec = self.specs[name]
            mine = [(i, m) for i, m in self.members.items() if m.queue == name]
            queued = sorted(
                (i for i, _ in mine if status(i) == "queued"),
                key=lambda i: (-self.members[i].priority, self.members[i].seq),
            )
            if not queued:
                continue
            running = sum(1 for i, _ in mine if status(i) in UNFINISHED)
            starts = [m.admitted_at for _, m in mine if m.admitted_at is not None]
            decision = admission(
                spec, wanted=len(queued), running=running, mine=running, recent=starts, now=now
            )
            if decision.retry_at is not None:
                retry.append(decision.retry_at)
            for instance_id in queued[: decision.count]:
                self.members[instance_id].admitted_at = now
                admitted.append(instance_id)
        self.retry_at = min(retry, default=None)
        return admitted

    def stats(self, status: Callable[[str], str]) -> list[QueueStats]:
        found = []
        for name in sorted(self.specs):
            ids = [i for i, m in self.members.items() if m.queue == name]
            found.append(
                QueueStats(
                    spec=self.specs[name],
                    queued=sum(1 for i in ids if status(i) == "queued"),
                    running=sum(1 for i in ids if status(i) in UNFINISHED),
                )
            )
        return found


__all__ = ["Member", "MemoryQueues"]
