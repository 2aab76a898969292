"""Why a request was not admitted. The proxy maps these to 429 answers in the caller's dialect."""

from __future__ import annotations


class LimitRefused(Exception):
    status = 429
    code = "limit_refused"

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CountersUnavailable(LimitRefused):
    """The counter store (Redis) does not answer: nothing is admitted (fail closed)."""

    status = 503
    code = "service_unavailable"


class RateLimited(LimitRefused):
    """Over rpm_limit, tpm_limit or max_parallel."""

    code = "rate_limit_exceeded"


class ModelUnpriced(LimitRefused):
    """A key with a USD budget asked for a model that has no price: its cost could not be
    bounded, so it is not allowed."""

    status = 403
    code = "model_not_allowed"


class BudgetExceeded(LimitRefused):
    """The budget left in the window cannot cover the request's worst case."""

    code = "budget_exceeded"


class InvalidLimits(ValueError):
    """A limit out of its range (limits.validation): the admin API answers 400, the admin
    site shows it on the field."""

    code = "validation_error"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items()))
        self.errors = errors
