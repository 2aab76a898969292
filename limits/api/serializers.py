"""The limit fields of a key on the admin API: written on POST/PATCH /admin/keys, read
with the key together with the current window's `spend`."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gatewaysite.api.fields import StrictIntegerField
from limits import windows
from limits.selectors import KeyLimitsView, limits_view_for_keys
from limits.validation import INTEGER_RANGES

LIMIT_WRITE_FIELDS = (
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budget_usd",
    "budget_tokens",
    "budget_period",
)
LIMIT_READ_FIELDS = (*LIMIT_WRITE_FIELDS, "spend")


USD_SCHEMA = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^\d{1,14}(\.\d{1,10})?$",
    "nullable": True,
}


@extend_schema_field(USD_SCHEMA)
class UsdField(serializers.DecimalField):
    """A non-negative USD amount as a decimal string (up to 10 decimal places)."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=24, decimal_places=10, min_value=Decimal(0), **kwargs)


class KeyLimitsWriteSerializer(serializers.Serializer):
    """All optional; null removes a limit."""

    rpm_limit = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=INTEGER_RANGES["rpm_limit"],
        help_text="Requests admitted in any rolling 60 seconds; null for no limit.",
    )
    tpm_limit = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=INTEGER_RANGES["tpm_limit"],
        help_text="Tokens (finished as recorded, in flight as reserved) in any rolling 60 s.",
    )
    max_parallel = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=INTEGER_RANGES["max_parallel"],
        help_text="Requests in flight at once (a stream counts until it ends).",
    )
    budget_usd = UsdField(
        required=False,
        allow_null=True,
        help_text="USD per budget_period, as a decimal string.",
    )
    budget_tokens = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=INTEGER_RANGES["budget_tokens"],
        help_text="Tokens per budget_period.",
    )
    budget_period = serializers.ChoiceField(
        choices=windows.PERIODS,
        required=False,
        allow_null=True,
        help_text="`day`, `week` (from Monday), `month` (UTC calendar windows) or `total`; "
        "default `month` (null: back to `month`).",
    )


class SpendSerializer(serializers.Serializer):
    period = serializers.CharField()
    window_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField(allow_null=True)
    spent_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    spent_tokens = serializers.IntegerField(allow_null=True)
    reserved_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    reserved_tokens = serializers.IntegerField(allow_null=True)
    remaining_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    remaining_tokens = serializers.IntegerField(allow_null=True)


class KeyLimitsReadMixin(serializers.Serializer):
    """Read fields of a key's limits. A list view puts `limits` (key id -> view) in the
    context for its whole page at once; a single key reads its own."""

    rpm_limit = serializers.SerializerMethodField()
    tpm_limit = serializers.SerializerMethodField()
    max_parallel = serializers.SerializerMethodField()
    budget_usd = serializers.SerializerMethodField()
    budget_tokens = serializers.SerializerMethodField()
    budget_period = serializers.SerializerMethodField()
    spend = serializers.SerializerMethodField()

    def _limits(self, key) -> KeyLimitsView:
        views = self.context.setdefault("limits", {})
        if key.pk not in views:
            views.update(limits_view_for_keys(keys=[key]))
        return views[key.pk]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_rpm_limit(self, key):
        return self._limits(key).rpm_limit

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_tpm_limit(self, key):
        return self._limits(key).tpm_limit

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_max_parallel(self, key):
        return self._limits(key).max_parallel

    @extend_schema_field(USD_SCHEMA)
    def get_budget_usd(self, key):
        value = self._limits(key).budget_usd
        return None if value is None else format(value, "f")  # never "0E-10"

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_budget_tokens(self, key):
        return self._limits(key).budget_tokens

    @extend_schema_field(serializers.ChoiceField(choices=windows.PERIODS))
    def get_budget_period(self, key):
        return self._limits(key).budget_period

    @extend_schema_field(SpendSerializer)
    def get_spend(self, key):
        return SpendSerializer(self._limits(key).spend).data


def split_limit_fields(data: dict) -> dict:
    """Take the limit fields out of a key's validated write data."""
    return {name: data.pop(name) for name in LIMIT_WRITE_FIELDS if name in data}


def limits_context(keys) -> dict:
    """Serializer context holding the limits of a whole page of keys, read at once."""
    return {"limits": limits_view_for_keys(keys=keys)}
