"""Upstream secrets at rest: the only module that touches Fernet.

The keyring is a MultiFernet over ENCRYPTION_KEY (encrypts) plus
ENCRYPTION_KEY_PREVIOUS (decrypt only), so an operator can rotate the key
without a window in which old secrets are unreadable.

This module is imported by settings (to fail fast on a bad key), so it must
not import Django models or settings at module level.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

HOW_TO_GENERATE = (
    'Generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class EncryptionKeyError(Exception):
    """The configured encryption key is missing or malformed."""


class SecretUnreadable(Exception):
    """No key in the keyring decrypts this token (to a caller: the upstream is unavailable)."""

    code = "service_unavailable"


def parse_key(value: str | bytes | None, *, name: str = "ENCRYPTION_KEY") -> str:
    """Return the key stripped of surrounding whitespace, or raise EncryptionKeyError.

    The message never contains the value itself.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise EncryptionKeyError(
                f"{name} is not a valid Fernet key. {HOW_TO_GENERATE}"
            ) from None
    value = (value or "").strip()
    if not value:
        raise EncryptionKeyError(f"{name} is not set. {HOW_TO_GENERATE}")
    try:
        Fernet(value)
    except (ValueError, TypeError):
        raise EncryptionKeyError(
            f"{name} is not a valid Fernet key (32 url-safe base64-encoded bytes). "
            f"{HOW_TO_GENERATE}"
        ) from None
    return value


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


@functools.lru_cache(maxsize=4)
def _keyring(primary: str, previous: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(primary), *(Fernet(k) for k in previous)])


def keyring() -> MultiFernet:
    from django.conf import settings

    return _keyring(settings.ENCRYPTION_KEY, tuple(settings.ENCRYPTION_KEY_PREVIOUS))


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return keyring().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable("no configured encryption key decrypts this secret") from None


def reencrypt(token: str) -> str:
    """Return the token encrypted under the primary key (a no-op in meaning if it already is)."""
    try:
        return keyring().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable("no configured encryption key decrypts this secret") from None


def is_primary(token: str) -> bool:
    """True when the primary key alone decrypts the token."""
    from django.conf import settings

    try:
        Fernet(settings.ENCRYPTION_KEY).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def secret_hint(secret: str) -> str:
    """A masking hint such as ``sk-***1234``: never enough of the secret to matter."""
    if len(secret) < 12:
        return "***"
    if len(secret) < 16:  # short secrets: the last four only
        return f"***{secret[-4:]}"
    return f"{secret[:3]}***{secret[-4:]}"
