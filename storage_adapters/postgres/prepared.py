"""The fast path's own statements, run with libpq's ``PQexecPrepared`` instead of a psycopg cursor.

A psycopg ``execute`` costs about 40 µs of client CPU around its round trip: a cursor and its
adapters map, the conversion of ``%(name)s`` placeholders, psycopg's prepared-statement cache,
the wait loop in Python, the result's row maker. The fast path sends a handful of fixed
statements many times a workflow, so each is prepared by name once per connection (``PQprepare``,
on first use there) and then run by ``PQexecPrepared``: one libpq call that sends, waits (with the
GIL released) and receives. Parameters are still dumped by psycopg's ``Transformer`` (in C; text
format, raw binary for the ``bytea`` ones); the caller reads the ``PGresult`` directly. Statements
keep their ``%(name)s`` placeholders in the source; :class:`Statement` turns them into ``$n``.

Errors are psycopg's: the result's SQLSTATE class (``psycopg.errors``), or
``psycopg.OperationalError`` when the connection was lost (the pool then drops it and the caller
retries on another). A prepared statement the session forgot (``DEALLOCATE`` / ``DISCARD ALL``
on the connection, e.g. by an activity's ``ctx.session``) is prepared again: at once in
autocommit mode; inside a transaction (which the error aborted) the error is raised and the
statement is prepared on its next use.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.abc import Buffer
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq.abc import PGconn, PGresult
from psycopg.rows import TupleRow

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_names = itertools.count()


class Statement:
    """A fast-path statement: ``sql`` with ``%(name)s`` placeholders (``binary``: the names of
    its ``bytea`` parameters, sent raw), prepared as ``rk_fast_<n>`` on each connection."""

    __slots__ = ("formats", "name", "order", "pyformats", "sql")

    def __init__(self, sql: str, *, binary: Collection[str] = ()) -> None:
        order: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] not in order:
                order.append(match[1])
            return f"${order.index(match[1]) + 1}"

        self.sql = _PLACEHOLDER.sub(number, sql).encode()
        self.name = f"rk_fast_{next(_names)}".encode()
        self.order = tuple(order)
        self.pyformats = [PyFormat.BINARY if n in binary else PyFormat.TEXT for n in order]
        self.formats = [int(f is PyFormat.BINARY) for f in self.pyformats]
        if set(binary) - set(order):
            raise ValueError(f"binary parameters not in the statement: {set(binary) - set(order)}")


class PooledConnection(psycopg.Connection[TupleRow]):
    """A pooled connection that knows which :class:`Statement` s it has prepared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_prepared: set[bytes] = set()
        self.fast_dumper = Transformer(self)


def execute(conn: PooledConnection, statement: Statement, params: Mapping[str, Any]) -> PGresult:
    """Run ``statement`` with ``params`` (by name) on ``conn``; its result (raises psycopg's
    errors)."""
    values = conn.fast_dumper.dump_sequence(
        [params[name] for name in statement.order], statement.pyformats
    )
    pgconn = conn.pgconn
    if statement.name not in conn.fast_prepared:
        _prepare(conn, statement)
    result = _exec(pgconn, statement, values)
    if result.status in _OK:
        return result
    error = _error(conn, result)
    if not isinstance(error, pg_errors.InvalidSqlStatementName):
        raise error
    conn.fast_prepared.discard(statement.name)  # the session dropped it: prepare it again,
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:  # now, or (in a transaction,
        raise error  # which the error ended) on the next use
    _prepare(conn, statement)
    return _checked(conn, _exec(pgconn, statement, values))


def _exec(pgconn: PGconn, statement: Statement, values: Sequence[Buffer | None]) -> PGresult:
    # None is SQL NULL: libpq takes it (psycopg's own cursors pass it), its stub does not say so
    return pgconn.exec_prepared(statement.name, values, statement.formats)  # type: ignore[arg-type]


def _prepare(conn: PooledConnection, statement: Statement) -> None:
    _checked(conn, conn.pgconn.prepare(statement.name, statement.sql))
    conn.fast_prepared.add(statement.name)


def _checked(conn: PooledConnection, result: PGresult) -> PGresult:
    if result.status in _OK:
        return result
    raise _error(conn, result)


def _error(conn: PooledConnection, result: PGresult) -> psycopg.Error:
    if conn.pgconn.status == pq.ConnStatus.BAD:
        message = result.get_error_message() or conn.pgconn.get_error_message()
        return psycopg.OperationalError(f"the connection to the server was lost: {message}")
    return pg_errors.error_from_result(result, encoding=conn.info.encoding)
