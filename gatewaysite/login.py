"""The admin site's sign-in: failed attempts throttled, password hashing off the event loop.

Throttling: after LOGIN_FAILURE_LIMIT failed sign-ins from one client address, or for
one username, within LOGIN_FAILURE_WINDOW seconds, the form refuses at once, without
hashing anything, until the window ends. Counters live in Django's cache: shared by
every worker and instance with REDIS_URL; per worker process without it (then the bound
is the limit times the number of workers).

Hashing: PBKDF2 with Django's iterations costs a few hundred milliseconds of CPU. On a
gevent worker that is a few hundred milliseconds in which no proxied request moves;
hashlib releases the GIL while it hashes, so one real thread per worker does it instead.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.core.exceptions import ValidationError


def _counter_keys(request, username: str) -> list[str]:
    address = (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"
    return [
        f"login-failures:address:{address}",
        f"login-failures:user:{username.strip().lower()[:150]}",
    ]


def login_throttled(*, request, username: str) -> bool:
    """Whether sign-ins from this address or for this username are refused for now."""
    counts = cache.get_many(_counter_keys(request, username))
    return any(count >= settings.LOGIN_FAILURE_LIMIT for count in counts.values())


def login_failure_record(*, request, username: str) -> None:
    """Count one failed sign-in against the address and the username."""
    for key in _counter_keys(request, username):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW)


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins. Try again later.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if login_throttled(request=self.request, username=username):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError as exc:
            if any(e.code == "invalid_login" for e in exc.error_list):
                login_failure_record(request=self.request, username=username)
            raise


class _HashingThread:
    pool = None
    pid = None
    local = threading.local()


def _off_loop(function, *args):
    try:
        from gevent import get_hub, monkey
    except ImportError:
        return function(*args)
    if not monkey.is_module_patched("socket"):
        return function(*args)
    from gevent.threadpool import ThreadPool

    if _HashingThread.pid != os.getpid():
        _HashingThread.pool, _HashingThread.pid = ThreadPool(1, hub=get_hub()), os.getpid()
    return _HashingThread.pool.apply(_at_low_priority, (function, *args))


def _at_low_priority(function, *args):
    # The hashing thread yields its core to the worker's event loop (Linux: a thread's
    # own nice value). Measured on 2 cores, 2 workers, 4 clients flooding wrong
    # passwords: /v1 p50 2.1 ms quiet; 17.5 ms with hashing in a thread at normal
    # priority; see proxy/tests/test_proxy_under_login_flood.py for the bound kept.
    if not getattr(_HashingThread.local, "niced", False):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        _HashingThread.local.niced = True
    return function(*args)


class OffLoopPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 (same algorithm name, same hashes), computed in a real thread."""

    def encode(self, password, salt, iterations=None):
        return _off_loop(super().encode, password, salt, iterations)
