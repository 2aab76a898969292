"""Generating, hashing and masking gateway keys: the only place key material is handled. Pure."""

from __future__ import annotations

import base64
import hashlib
import secrets

KEY_PREFIX = "sk-auto-"
KEY_RANDOM_BYTES = 32
# 32 bytes -> 43 url-safe base64 characters without padding.
KEY_LENGTH = len(KEY_PREFIX) + 43
DISPLAY_PREFIX_LENGTH = 12
_KEY_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def generate_key() -> str:
    raw = secrets.token_bytes(KEY_RANDOM_BYTES)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def is_well_formed(candidate: str) -> bool:
    """True when the string could be a key we issued (cheap, before any lookup)."""
    return (
        len(candidate) == KEY_LENGTH
        and candidate.startswith(KEY_PREFIX)
        and _KEY_ALPHABET.issuperset(candidate[len(KEY_PREFIX) :])
    )


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def display_prefix(raw_key: str) -> str:
    return raw_key[:DISPLAY_PREFIX_LENGTH]


def last4(raw_key: str) -> str:
    return raw_key[-4:]


def mask_key(prefix: str, last_four: str) -> str:
    return f"{prefix}{'*' * 8}{last_four}"
