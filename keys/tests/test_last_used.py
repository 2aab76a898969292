"""last_used_at: written by key_touch (the proxy's step after authenticating), at most about
once a minute per key, across instances with Redis; authenticating alone writes nothing."""

import os

import pytest
from django.core.cache import caches

from keys import services
from keys.models import APIKey
from keys.selectors import key_authenticate
from keys.services import key_touch
from testing.helpers import redis_test_url

pytestmark = pytest.mark.django_db

REDIS_URL = redis_test_url()


@pytest.fixture
def shared_cache(settings):
    """Django's cache on Redis, as with REDIS_URL; the test fails if Redis does not answer."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"gateway-test-{os.getpid()}",
        }
    }
    cache = caches["default"]
    assert type(cache).__name__ == "RedisCache"
    cache.clear()
    yield cache
    cache.clear()


def _last_used(key) -> object:
    return APIKey.objects.values_list("last_used_at", flat=True).get(pk=key.pk)


def _use(raw):
    key_touch(grant=key_authenticate(raw_key=raw))


def test_authenticating_writes_nothing(make_key):
    services._last_touched.clear()
    key, raw = make_key()
    key_authenticate(raw_key=raw)  # the lookup may read; it must not write
    assert _last_used(key) is None


def test_the_first_use_is_recorded_and_the_next_ones_within_a_minute_are_not(make_key):
    services._last_touched.clear()
    key, raw = make_key()
    _use(raw)
    first = _last_used(key)
    assert first is not None
    _use(raw)
    assert _last_used(key) == first


def test_with_redis_a_second_instance_does_not_write_again(make_key, shared_cache):
    services._last_touched.clear()
    key, raw = make_key()
    _use(raw)
    assert _last_used(key) is not None
    assert shared_cache.get(f"keys:last-used:{key.pk}") == 1  # really in Redis

    APIKey.objects.filter(pk=key.pk).update(last_used_at=None)
    services._last_touched.clear()  # another process: its own memory is empty
    _use(raw)
    assert _last_used(key) is None  # the shared cache knew the minute's write was done
