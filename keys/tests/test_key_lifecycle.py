import datetime as dt

import pytest
from django.utils import timezone

from keys.exceptions import (
    InvalidUpstreams,
    KeyExpired,
    KeyInvalid,
    KeyMissing,
    MissingUpstreams,
)
from keys.models import APIKey
from keys.secrets import hash_key
from keys.selectors import key_authenticate, key_find
from keys.services import key_create, key_revoke, key_rotate, key_update
from upstreams.services import upstream_deactivate

pytestmark = pytest.mark.django_db


def test_only_the_hash_is_stored_and_lookup_is_by_hash(make_key):
    key, raw = make_key()
    row = APIKey.objects.get(pk=key.pk)
    assert row.key_hash == hash_key(raw)
    assert raw not in {str(v) for v in APIKey.objects.values().get(pk=key.pk).values()}
    assert key_authenticate(raw_key=raw).id == key.pk


def test_missing_unknown_and_hash_as_key_are_refused(make_key):
    key, raw = make_key()
    with pytest.raises(KeyMissing):
        key_authenticate(raw_key="")
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw[:-1] + ("A" if raw[-1] != "A" else "B"))
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=key.key_hash)


def test_revocation_is_seen_by_a_warm_cache_at_once(make_key):
    key, raw = make_key()
    assert key_authenticate(raw_key=raw).id == key.pk  # warms the cache
    key_revoke(actor="tests", key=key)
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw)


def test_expired_key_is_refused_as_expired(make_key):
    key, raw = make_key(expires_at=timezone.now() + dt.timedelta(hours=1))
    assert key_authenticate(raw_key=raw)
    with pytest.raises(KeyExpired):
        key_authenticate(raw_key=raw, now=timezone.now() + dt.timedelta(hours=2))


def test_rotation_without_grace_stops_the_old_key_now(make_key):
    key, raw = make_key()
    new_key, new_raw = key_rotate(actor="tests", key=key)
    assert set(new_key.upstreams.all()) == set(key.upstreams.all())
    assert key_authenticate(raw_key=new_raw).id == new_key.pk
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw)


def test_rotation_with_grace_keeps_the_old_key_until_it_ends(make_key):
    key, raw = make_key()
    key_rotate(actor="tests", key=key, grace_seconds=60)
    assert key_authenticate(raw_key=raw).id == key.pk
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw, now=timezone.now() + dt.timedelta(seconds=61))


def test_create_needs_upstreams_and_refuses_unknown_or_inactive(make_upstream):
    up = make_upstream()
    gone = make_upstream()
    upstream_deactivate(actor="tests", upstream=gone)
    with pytest.raises(MissingUpstreams):
        key_create(actor="tests", name="k", upstream_ids=[])
    with pytest.raises(InvalidUpstreams) as exc:
        key_create(actor="tests", name="k", upstream_ids=[up.pk, gone.pk, "not-a-uuid"])
    assert set(exc.value.ids) == {str(gone.pk), "not-a-uuid"}
    assert APIKey.objects.count() == 0


def test_narrowing_upstreams_is_seen_at_once(make_key, make_upstream):
    a, b = make_upstream(), make_upstream()
    key, raw = make_key(upstreams=[a, b])
    assert key_authenticate(raw_key=raw).upstream_ids == {a.pk, b.pk}
    key_update(actor="tests", key=key, upstream_ids=[a.pk])
    assert key_authenticate(raw_key=raw).upstream_ids == {a.pk}


def test_find_by_id_or_prefix(make_key):
    key, raw = make_key()
    assert key_find(id_or_prefix=str(key.pk)) == key
    assert key_find(id_or_prefix=raw[:12]) == key
    with pytest.raises(APIKey.DoesNotExist):
        key_find(id_or_prefix="sk-auto-nope")


def test_a_stale_copy_cannot_undo_a_revocation(make_key):
    key, raw = make_key()
    stale = APIKey.objects.get(pk=key.pk)
    key_revoke(actor="tests", key=key)
    key_update(actor="tests", key=stale, name="renamed")
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=raw)
    row = APIKey.objects.get(pk=key.pk)
    assert (row.name, row.is_active) == ("renamed", False)


def test_find_by_the_whole_key(make_key):
    key, raw = make_key()
    assert key_find(id_or_prefix=raw) == key
