"""The two writes on every proxied request, in plain SQL.

Through the ORM, `create()` and `update()` spent about three quarters of their time
building the query (367 µs against 96 µs on SQLite, 923 against 243 on PostgreSQL,
measured with bench/inproc.py). Values still go through each field's own
conversion, so what is stored is exactly what the ORM would store.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from gatewaysite.short_transaction import hot_path_cursor, short_transaction, write
from logs.models import RequestLog

_FIELDS = [f for f in RequestLog._meta.concrete_fields if f.attname != "id"]
_BY_ATTNAME = {f.attname: f for f in _FIELDS}


@functools.cache
def _plain_values(vendor: str) -> dict[str, tuple[type, object]]:
    """{attname: (type, conversion)} for the fields whose conversion of a value of exactly
    that type is trivial: an int (on PostgreSQL wrapped in psycopg's int of the column's
    size, as Django's adapt_integerfield_value does), a str, a bool. Most of a row's
    values are such; each field's get_db_prep_save took about 2 µs to return them as
    they were, 22 times per request."""
    plain = {}
    for f in _FIELDS:
        if isinstance(f, models.BooleanField):
            plain[f.attname] = (bool, None)
        elif isinstance(f, models.IntegerField):
            wrap = None
            if vendor == "postgresql":
                wrap = connection.ops.integerfield_type_map[f.get_internal_type()]
            plain[f.attname] = (int, wrap)
        elif isinstance(f, models.CharField):
            plain[f.attname] = (str, None)
    return plain


def _prep(field, value, conn, plain: dict):
    """The value as the field stores it: what field.get_db_prep_save(value) returns."""
    if value is None:
        return None
    found = plain.get(field.attname)
    if found is not None and type(value) is found[0]:
        return value if found[1] is None else found[1](value)
    return field.get_db_prep_save(value, conn)


@functools.cache
def _insert_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in _FIELDS)
    marks = ", ".join(["%s"] * len(_FIELDS))
    table = qn(RequestLog._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {qn('id')}"  # noqa: S608


def insert_row(values: dict[str, object]) -> int:
    """Insert one row (missing fields take their model defaults); return its id."""
    with hot_path_cursor() as cursor:
        write(cursor, _insert_sql(connection.vendor), _insert_params(values))
        return cursor.fetchone()[0]


def insert_row_along(values: dict[str, object], along) -> tuple[int, object]:
    """insert_row, with another write that must happen with it; return the row's id and
    that write's outcome.

    `along` is that write as both databases can run it (limits.db_store.DatabaseAdmission):
    on PostgreSQL its `postgresql_select()` rides in the same statement (a WITH clause:
    one round trip for both) and `from_row()` reads its columns; on SQLite `run_in(cursor)`
    runs in the same IMMEDIATE transaction. The row is inserted whatever the outcome.
    """
    params = _insert_params(values)
    vendor = connection.vendor  # each read of the connection proxy costs a few µs
    if vendor == "postgresql":
        along_sql, along_params = along.postgresql_select()
        with hot_path_cursor() as cursor:
            sql = (
                f"WITH along AS ({along_sql}), opened AS ({_insert_sql(vendor)}) "  # noqa: S608 - our own SQL
                "SELECT opened.id, along.* FROM opened, along"
            )
            cursor.execute(sql, [*along_params, *params])
            row = cursor.fetchone()
        return row[0], along.from_row(row[1:])
    with short_transaction() as cursor:
        outcome = along.run_in(cursor)
        cursor.execute(_insert_sql(vendor), params)
        return cursor.fetchone()[0], outcome


def _insert_params(values: dict[str, object]) -> list:
    conn = connections[DEFAULT_DB_ALIAS]
    constant = _constant_defaults(conn.vendor)
    plain = _plain_values(conn.vendor)
    params = []
    for f in _FIELDS:
        if f.attname in values:
            params.append(_prep(f, values[f.attname], conn, plain))
        elif f.attname in constant:
            params.append(constant[f.attname])
        else:
            params.append(f.get_db_prep_save(f.get_default(), conn))
    return params


@functools.cache
def _constant_defaults(vendor: str) -> dict[str, object]:
    """Each field's default as stored, for the fields whose default is a constant: most of
    an opening row's 25 columns, converted once instead of on every request."""
    return {
        f.attname: f.get_db_prep_save(f.get_default(), connection)
        for f in _FIELDS
        if not (f.has_default() and callable(f.default))
    }


def update_row(
    pk: int,
    values: dict[str, object],
    also: Sequence[tuple[str, list]] = (),
    only_if: tuple[str, object] | None = None,
) -> bool:
    """Update one row; `also`: other writes (sql, params) to make with it, atomically;
    `only_if`: (a SELECT of one value, the value it must still give), checked in the
    same statement: the row is left as it was when the value differs, `also` is
    written either way. Returns whether the row was updated (with no `only_if`: True).

    On PostgreSQL they ride in the same statement (data-modifying WITH clauses: one
    round trip instead of three for a transaction of its own); on SQLite, one
    transaction (no round trips to save there).
    """
    # The connection itself: each read through the `connection` proxy costs a few µs.
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    fields = [_BY_ATTNAME[name] for name in values]
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    sql = f"UPDATE {qn(RequestLog._meta.db_table)} SET {assignments} WHERE {qn('id')} = %s"  # noqa: S608
    plain = _plain_values(conn.vendor)
    params = [*(_prep(f, values[f.attname], conn, plain) for f in fields), pk]
    if only_if is not None:
        same = "IS NOT DISTINCT FROM" if conn.vendor == "postgresql" else "IS"
        sql = f"{sql} AND ({only_if[0]}) {same} %s RETURNING 1"
        params.append(only_if[1])
    if not also:
        with hot_path_cursor(conn) as cursor:
            write(cursor, sql, params)
            return _updated(cursor, only_if)
    elif conn.vendor == "postgresql":
        parts = ", ".join(f"also{i} AS ({statement})" for i, (statement, _) in enumerate(also))
        extra = [param for _, statement_params in also for param in statement_params]
        with hot_path_cursor(conn) as cursor:
            cursor.execute(f"WITH {parts} {sql}", [*extra, *params])
            return _updated(cursor, only_if)
    else:
        with short_transaction() as cursor:
            for statement, statement_params in also:
                cursor.execute(statement, statement_params)
            cursor.execute(sql, params)
            return _updated(cursor, only_if)


def _updated(cursor, only_if) -> bool:
    return only_if is None or cursor.fetchone() is not None
