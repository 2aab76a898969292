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


MAX_MODELS = 1000
MAX_MODEL_NAME = 200


# 1-200 characters, none of them an ASCII control character (as a JSON-schema pattern too).
MODEL_NAME_PATTERN = r"^[^\u0000-\u001f\u007f]{1,200}$"


def _model_name_errors(value: object, what: str) -> list[str]:
    if not isinstance(value, str) or not value or len(value) > MAX_MODEL_NAME:
        return [f"Each {what} must be a non-empty string of at most {MAX_MODEL_NAME} characters."]
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return [f"Each {what} must not contain control characters."]
    return []


def models_errors(value: object) -> list[str]:
    """A list of model names or `*` patterns (empty: any model). Shared with keys' allowlist."""
    if not isinstance(value, list):
        return ["Must be a list of model names or `*` patterns."]
    if len(value) > MAX_MODELS:
        return [f"Must have at most {MAX_MODELS} entries."]
    for item in value:
        errors = _model_name_errors(item, "model name or pattern")
        if errors:
            return errors
    return []


def aliases_errors(value: object) -> list[str]:
    if not isinstance(value, dict):
        return ['Must be an object: {"name a client sends": "model sent upstream"}.']
    if len(value) > MAX_MODELS:
        return [f"Must have at most {MAX_MODELS} entries."]
    # A name is matched exactly against the model a client sends (a "*" is literal), and
    # what is sent upstream is a model too: both follow the model-name rule. (A NUL in a
    # name was a 500 on PostgreSQL, which cannot store it in a JSON string.)
    for name, target in value.items():
        errors = _model_name_errors(name, "alias name") or _model_name_errors(
            target, "aliased model"
        )
        if errors:
            return errors
    return []


MAX_PRIORITY = 1_000_000
MAX_WEIGHT = 1_000_000


def priority_errors(value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PRIORITY:
        return [f"Must be a whole number between -{MAX_PRIORITY} and {MAX_PRIORITY}."]
    return []


def weight_errors(value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WEIGHT:
        return [f"Must be a whole number between 1 and {MAX_WEIGHT}."]
    return []


def normalize_models(value: list[str]) -> list[str]:
    """Duplicates dropped, order kept."""
    return list(dict.fromkeys(value))
