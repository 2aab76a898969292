"""Emptying the tables after a transactional test with DELETE, not TRUNCATE, on PostgreSQL.

A pytest plugin, loaded by the root conftest. After every test that commits (the
``transactional_db`` fixture, which every test of a live gunicorn uses), Django empties
every table with one TRUNCATE. On PostgreSQL a TRUNCATE gives each table and index a new
file, and its commit waits for the disk to sync them all: 0.3-0.6 s per test on the test
machine (4 ms per sync), minutes over the PostgreSQL half of the suite. The tests leave a
few rows behind, which DELETE removes in about 4 ms; nor does a DELETE need the ACCESS
EXCLUSIVE lock of a TRUNCATE, which waits for any transaction still open on the table.

The result is the same empty tables: Django's foreign keys on PostgreSQL are checked at
commit (DEFERRABLE INITIALLY DEFERRED), so the order of the DELETEs does not matter, and
the statements run in one transaction as before. A flush that resets sequences (a test
asking for ``reset_sequences``) keeps Django's TRUNCATE ... RESTART IDENTITY.
"""

from __future__ import annotations

import pytest


def _delete_instead_of_truncate(original):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return original(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [f"DELETE FROM {self.quote_name(table)};" for table in tables]  # noqa: S608

    return sql_flush


@pytest.fixture(scope="session", autouse=True)
def _flush_with_delete_on_postgresql():
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    DatabaseOperations.sql_flush = _delete_instead_of_truncate(original)
    yield
    DatabaseOperations.sql_flush = original
