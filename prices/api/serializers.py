"""What the admin API reads and writes for prices: USD per million tokens as decimal strings."""

from __future__ import annotations

from rest_framework import serializers

from gatewaysite.api.fields import StrictCharField
from prices.importing import MAX_MODEL_LENGTH
from prices.models import RATE_FIELD, Price

_RATE = {
    "max_digits": RATE_FIELD["max_digits"],
    "decimal_places": RATE_FIELD["decimal_places"],
    "min_value": 0,
    "coerce_to_string": True,
}


class PriceSerializer(serializers.ModelSerializer):
    upstream_id = serializers.UUIDField(read_only=True, allow_null=True)
    input = serializers.DecimalField(**_RATE, read_only=True)
    output = serializers.DecimalField(**_RATE, read_only=True)
    cache_read = serializers.DecimalField(**_RATE, read_only=True, allow_null=True)
    cache_write = serializers.DecimalField(**_RATE, read_only=True, allow_null=True)

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
    input = serializers.DecimalField(**_RATE, help_text=_RATE_HELP)
    output = serializers.DecimalField(**_RATE, help_text=_RATE_HELP)
    cache_read = serializers.DecimalField(
        **_RATE, required=False, allow_null=True, help_text=_RATE_HELP + " Null: the input price."
    )
    cache_write = serializers.DecimalField(
        **_RATE, required=False, allow_null=True, help_text=_RATE_HELP + " Null: the input price."
    )

    def validate_model(self, value: str) -> str:
        if not value or "\x00" in value:
            raise serializers.ValidationError("Must be a non-empty text without NUL.")
        return value
