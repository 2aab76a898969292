"""The values a key's limits may take: checked by limits_set, and by the admin API and the
admin site before they call it, so every surface accepts the same range. Pure."""

from __future__ import annotations

from decimal import Decimal

from limits import windows

# rpm_limit and max_parallel are PositiveIntegerField: a 32-bit integer on PostgreSQL.
MAX_REQUESTS = 2**31 - 1
# tpm_limit and budget_tokens are bigints; a quarter of the range is left for the sums of
# spend and reservations a window adds to them.
MAX_TOKENS = 2**62
INTEGER_RANGES = {
    "rpm_limit": MAX_REQUESTS,
    "max_parallel": MAX_REQUESTS,
    "tpm_limit": MAX_TOKENS,
    "budget_tokens": MAX_TOKENS,
}
# budget_usd is DecimalField(max_digits=24, decimal_places=10).
USD_DECIMAL_PLACES = 10
USD_MAX_DIGITS = 24
USD_INTEGER_DIGITS = USD_MAX_DIGITS - USD_DECIMAL_PLACES


def _integer_errors(value: object, maximum: int) -> list[str]:
    if type(value) is not int or not 0 <= value <= maximum:
        return [f"Must be a whole number from 0 to {maximum}."]
    return []


def _usd_errors(value: object) -> list[str]:
    message = [
        f"Must be a non-negative amount with at most {USD_INTEGER_DIGITS} digits before "
        f"the decimal point and {USD_DECIMAL_PLACES} after it."
    ]
    if type(value) is int:
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        return message
    sign, digits, exponent = value.as_tuple()
    places = max(0, -exponent)
    whole_digits = len(digits) + exponent if value >= 1 else 0
    if places > USD_DECIMAL_PLACES or whole_digits > USD_INTEGER_DIGITS:
        return message
    return []


def limits_errors(fields: dict) -> dict[str, list[str]]:
    """The errors of each given limit field, by field; empty when all are valid.

    None removes a limit and is always valid; an empty budget_period means the default.
    """
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name in INTEGER_RANGES:
            found = _integer_errors(value, INTEGER_RANGES[name])
        elif name == "budget_usd":
            found = _usd_errors(value)
        elif name == "budget_period":
            found = (
                []
                if value == "" or value in windows.PERIODS
                else [f"Must be one of: {', '.join(windows.PERIODS)}."]
            )
        else:
            continue
        if found:
            errors[name] = found
    return errors
