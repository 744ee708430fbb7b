"""A process that forks an instance and is killed (SIGKILL) while doing it: ``inside`` the fork's
transaction (after the history was copied, before the commit), or ``after`` the fork returned.

    python -m tests.runtime.fork_crash_proc URL SOURCE NEW_ID STEP inside|after
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from replaykit.runtime.app import App
from storage_adapters.sql_steps import SqlTx


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(url: str, source: str, new_id: str, step: int, when: str) -> None:
    app = App(url, workers=False, auto_migrate=False)
    if when == "inside":
        original = SqlTx.exec

        def exec_then_die(self: SqlTx, sql: str, *params: Any) -> None:
            original(self, sql, *params)
            if sql.startswith("UPDATE rk_instances SET history_len"):  # the fork's last write
                _die()

        SqlTx.exec = exec_then_die  # type: ignore[method-assign]
    app.fork(source, step=step, new_id=new_id)
    _die()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
