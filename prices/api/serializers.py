"""What the admin API reads and writes for prices: USD per million tokens as decimal strings."""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gatewaysite.api.fields import StrictCharField
from prices.importing import MAX_MODEL_LENGTH
from prices.models import RATE_FIELD, Price

# What RateField accepts, as a pattern: digits, up to 6 decimal places, never negative.
RATE_PATTERN = (
    rf"^[0-9]{{1,{RATE_FIELD['max_digits'] - RATE_FIELD['decimal_places']}}}"
    rf"(\.[0-9]{{1,{RATE_FIELD['decimal_places']}}})?$"
)


_RATE_RE = re.compile(RATE_PATTERN)


@extend_schema_field({"type": "string", "format": "decimal", "pattern": RATE_PATTERN})
class RateField(serializers.DecimalField):
    """USD per million tokens as a decimal string: what the schema says, and nothing else."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _RATE_RE.fullmatch(data):
            raise serializers.ValidationError(
                'Must be a decimal string such as "2.50": not negative, '
                f"at most {RATE_FIELD['decimal_places']} decimal places."
            )
        return super().to_internal_value(data)

    def run_validation(self, data=serializers.empty):
        if data == "":  # DRF would read it as null; the schema's pattern refuses it
            self.to_internal_value(data)
        return super().run_validation(data)


_RATE = {
    "max_digits": RATE_FIELD["max_digits"],
    "decimal_places": RATE_FIELD["decimal_places"],
    "min_value": 0,
    "coerce_to_string": True,
}


class PriceSerializer(serializers.ModelSerializer):
    upstream_id = serializers.UUIDField(read_only=True, allow_null=True)
    input = RateField(**_RATE, read_only=True)
    output = RateField(**_RATE, read_only=True)
    cache_read = RateField(**_RATE, read_only=True, allow_null=True)
    cache_write = RateField(**_RATE, read_only=True, allow_null=True)

    class Meta:
        model = Price
        fields = [
            "id",
            "model",
            "upstream_id",
            "input",
            "output",
            "cache_read",
            "cache_write",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


_RATE_HELP = 'USD per million tokens, as a decimal string (e.g. "2.50").'


class PriceCreateSerializer(serializers.Serializer):
    model = StrictCharField(
        max_length=MAX_MODEL_LENGTH,
        trim_whitespace=False,
        help_text="A model name, or a pattern where `*` stands for any characters.",
    )
    upstream_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The upstream it applies to; null: any."
    )
    input = RateField(**_RATE, help_text=_RATE_HELP)
    output = RateField(**_RATE, help_text=_RATE_HELP)
    cache_read = RateField(
        **_RATE, required=False, allow_null=True, help_text=_RATE_HELP + " Null: the input price."
    )
    cache_write = RateField(
        **_RATE, required=False, allow_null=True, help_text=_RATE_HELP + " Null: the input price."
    )

    def validate_model(self, value: str) -> str:
        if not value or "\x00" in value:
            raise serializers.ValidationError("Must be a non-empty text without NUL.")
        return value
