import pytest
from django.db import IntegrityError, transaction

from upstreams.models import Upstream
from upstreams.services import upstream_update

pytestmark = pytest.mark.django_db


def test_the_database_allows_at_most_one_default(make_upstream):
    make_upstream(is_default=True)
    other = make_upstream()
    with pytest.raises(IntegrityError), transaction.atomic():
        Upstream.objects.filter(pk=other.pk).update(is_default=True)


def test_setting_a_default_clears_the_others(make_upstream):
    first = make_upstream(is_default=True)
    second = make_upstream(is_default=True)
    assert list(Upstream.objects.filter(is_default=True)) == [second]
    upstream_update(actor="tests", upstream=first, is_default=True)
    assert list(Upstream.objects.filter(is_default=True).values_list("pk", flat=True)) == [first.pk]


def test_a_name_with_a_trailing_newline_is_refused_everywhere():
    from upstreams.validation import name_errors

    assert name_errors("main\n") != []
    assert name_errors("main") == []


def test_a_stale_copy_cannot_undo_a_deactivation_or_a_new_secret(make_upstream):
    from upstreams import crypto
    from upstreams.services import upstream_deactivate

    up = make_upstream(api_key="sk-original-secret-0001")
    stale_a = Upstream.objects.get(pk=up.pk)
    stale_b = Upstream.objects.get(pk=up.pk)
    upstream_update(actor="tests", upstream=up, api_key="sk-rotated-secret-0002")
    upstream_deactivate(actor="tests", upstream=stale_a)
    upstream_update(actor="tests", upstream=stale_b, timeout=30)
    row = Upstream.objects.get(pk=up.pk)
    assert row.is_active is False
    assert row.timeout == 30
    assert crypto.decrypt(row.secret_encrypted) == "sk-rotated-secret-0002"
