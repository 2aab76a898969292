"""Rules for upstream fields, shared by the admin API, the admin site and the import. Pure."""

from __future__ import annotations

import re
import urllib.parse

from upstreams.models import Provider

NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
MAX_TIMEOUT_SECONDS = 3600.0
MAX_SECRET_LENGTH = 4096


def name_errors(value: object) -> list[str]:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        return [
            "Must be a slug: 1-64 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit."
        ]
    return []


def provider_errors(value: object) -> list[str]:
    if value not in Provider.values:
        return [f"Must be one of: {', '.join(Provider.values)}."]
    return []


def base_url_errors(value: object) -> list[str]:
    if not isinstance(value, str) or not value or len(value) > 500:
        return ["Must be an http or https URL of at most 500 characters."]
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        return ["Must not contain spaces or control characters."]
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError:
        return ["Must be a valid URL."]
    errors = []
    if parts.scheme not in ("http", "https"):
        errors.append("Scheme must be http or https.")
    if not parts.hostname:
        errors.append("Must include a host.")
    if parts.username is not None or parts.password is not None:
        errors.append("Must not contain credentials.")
    if parts.fragment or value.endswith("#"):
        errors.append("Must not contain a fragment.")
    if parts.query:
        errors.append("Must not contain a query string.")
    if port == 0:
        errors.append("Port must be between 1 and 65535.")
    return errors


def base_url_warnings(value: str) -> list[str]:
    """Accepted but probably wrong: a base_url with no path has no version segment, so
    `/v1/chat/completions` would go to `<base_url>/chat/completions`, not `/v1/…`."""
    try:
        path = urllib.parse.urlsplit(value).path
    except ValueError:
        return []
    if path.strip("/"):
        return []
    return [
        f"base_url {value!r} has no version segment: the gateway sends /v1/<path> to "
        "<base_url>/<path>, so it should end as the official SDKs' does "
        "(https://api.openai.com/v1, https://api.anthropic.com/v1)."
    ]


def timeout_errors(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ["Must be a number of seconds."]
    if not (0 < value <= MAX_TIMEOUT_SECONDS):
        return [f"Must be greater than 0 and at most {int(MAX_TIMEOUT_SECONDS)} seconds."]
    return []


def secret_errors(value: object) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return ["Must be a non-empty string."]
    if len(value) > MAX_SECRET_LENGTH:
        return [f"Must be at most {MAX_SECRET_LENGTH} characters."]
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return ["Must not contain control characters."]
    if not value.isascii():
        return ["Must contain only ASCII characters (it is sent in an HTTP header)."]
    return []


def normalize_base_url(value: str) -> str:
    return value.rstrip("/")
