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
    upstream_update(upstream=first, is_default=True)
    assert list(Upstream.objects.filter(is_default=True).values_list("pk", flat=True)) == [first.pk]


def test_a_name_with_a_trailing_newline_is_refused_everywhere():
    from upstreams.validation import name_errors

    assert name_errors("main\n") != []
    assert name_errors("main") == []
