"""After a test that commits, every table is empty again, rows that refer to each other too."""

from __future__ import annotations

import uuid

import pytest
from django.apps import apps
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection

from logs.services import log_open


@pytest.mark.django_db(transaction=True)
def test_the_flush_empties_every_table_whatever_refers_to_what(make_key):
    key, _ = make_key()  # a key, its upstream, the link between them, history entries
    log_open(request_id=uuid.uuid4(), method="POST", path="/v1/chat/completions",
             api_key_id=key.pk, upstream_id=key.upstreams.get().pk)  # fmt: skip
    # As Django's TransactionTestCase asks for it after each test.
    statements = sql_flush(no_style(), connection, reset_sequences=False, allow_cascade=False)
    if connection.vendor == "postgresql":
        assert statements and all(s.startswith("DELETE FROM ") for s in statements)

    connection.ops.execute_sql_flush(statements)

    left = {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.managed and model.objects.exists()
    }
    assert left == {}
