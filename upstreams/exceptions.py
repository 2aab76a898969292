"""Typed failures of upstream choice and management."""


class UpstreamError(Exception):
    code = "upstream_error"


class UnknownUpstream(UpstreamError):
    """The requested name names no upstream at all."""

    code = "unknown_upstream"

    def __init__(self, requested: str, permitted_names: list[str]):
        names = ", ".join(permitted_names) or "none"
        super().__init__(f"Unknown upstream. This key may use: {names}")
        self.requested = requested
        self.permitted_names = permitted_names


class UpstreamForbidden(UpstreamError):
    code = "forbidden"


class UpstreamUnavailable(UpstreamError):
    code = "service_unavailable"


class InvalidUpstreamData(UpstreamError):
    """An upstream definition (from the API, the admin or UPSTREAMS) is not valid."""

    code = "invalid_upstream_data"

    def __init__(self, errors: dict[str, list[str]], *, entry: str = ""):
        where = f"{entry}: " if entry else ""
        text = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        super().__init__(f"{where}{text}")
        self.errors = errors
        self.entry = entry


class UpstreamNameTaken(InvalidUpstreamData):
    """The name is already used by another upstream (a conflict, not a malformed value)."""

    code = "upstream_name_taken"


class ModelNotAllowed(UpstreamError):
    """The key may not ask for this model (its `models` allowlist)."""

    code = "model_not_allowed"


class ModelNotFound(UpstreamError):
    """No upstream the key may use serves this model."""

    code = "model_not_found"
