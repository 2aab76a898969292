"""Helpers for the admin site's tests (imported by them; not a test module)."""

from __future__ import annotations

from django.db import connection


def rows_containing(text: str) -> list[str]:
    """Every table and column whose stored value contains `text`, sessions decoded.

    Session data is stored signed and base64-encoded, so it is decoded before the
    search: a plaintext parked there by a message would otherwise go unseen.
    """
    from django.contrib.sessions.models import Session

    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("latin-1")
                    if value is not None and text in str(value):
                        found.append(f"{table}.{column}")
    for session in Session.objects.all():
        if text in repr(session.get_decoded()):
            found.append("django_session.session_data (decoded)")
    return found
