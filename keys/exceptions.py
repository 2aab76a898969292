"""Typed failures of the keys app; each surface maps them to its own status codes."""


class APIKeyError(Exception):
    code = "api_key_error"


class KeyMissing(APIKeyError):
    code = "missing_api_key"


class KeyInvalid(APIKeyError):
    code = "invalid_api_key"


class KeyExpired(APIKeyError):
    code = "api_key_expired"


class KeyNotRotatable(APIKeyError):
    """Only a key that still works can be rotated."""

    code = "key_not_rotatable"


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
