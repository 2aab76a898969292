"""Typed failures of the keys app. Each carries the error code clients see; each surface
maps the class to a status only (the proxy's table, the admin API's handler)."""


class APIKeyError(Exception):
    code = "api_key_error"


class KeyMissing(APIKeyError):
    code = "missing_api_key"


class KeyInvalid(APIKeyError):
    code = "invalid_api_key"


class KeyExpired(APIKeyError):
    code = "api_key_expired"


class KeyNotRotatable(APIKeyError):
    """Only a working key that was not rotated yet can be rotated (revoked, expired)."""

    code = "conflict"


class KeyInGrace(KeyNotRotatable):
    """The key was already rotated and works only until its grace ends: rotating it again
    would leave two working successors. Its successor is the key to rotate."""

    def __init__(self, key_prefix: str, successor_prefix: str | None):
        successor = f"its successor {successor_prefix}…" if successor_prefix else "its successor"
        super().__init__(
            f"API key {key_prefix}… was already rotated and works only until its grace "
            f"period ends; rotate {successor} instead."
        )
        self.successor_prefix = successor_prefix


class InvalidKeyData(APIKeyError):
    """A value breaks a rule of keys (an expiry in the past, a grace out of bounds)."""

    code = "validation_error"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items()))
        self.errors = errors


class MissingUpstreams(APIKeyError):
    code = "missing_upstreams"


class InvalidUpstreams(APIKeyError):
    code = "invalid_upstream"

    def __init__(self, ids: list[str]):
        super().__init__(f"Unknown or inactive upstream ids: {', '.join(ids)}")
        self.ids = ids


class InvalidModels(APIKeyError):
    """The model allowlist is not a list of model names or `*` patterns."""

    code = "validation_error"

    def __init__(self, errors: list[str]):
        super().__init__(" ".join(errors))
        self.errors = errors
