"""A process that registers a worker and claims instances, then waits to be killed:
``python -m tests.storage.liveness_proc URL WORKER_ID INSTANCE_ID...`` (prints "ready")."""

from __future__ import annotations

import sys
import time

from storage_adapters import open_storage


def main() -> None:
    url, worker_id, *instance_ids = sys.argv[1:]
    storage = open_storage(url, auto_migrate=False)
    storage.register_worker(worker_id, now=time.time())
    for instance_id in instance_ids:
        assert storage.claim_instance(instance_id, worker_id, lease_seconds=3600, now=time.time())
    print("ready", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main()
