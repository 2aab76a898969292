"""What the admin API reads and writes for upstreams. The secret is write-only: answers
carry `api_key_masked` (e.g. ``sk-***1234``), never the secret or its ciphertext.

Each field's schema states exactly what the field accepts (the rules of
upstreams.validation, written as patterns and bounds), so a client can check a
body before sending it, and what the schema allows is never refused.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gatewaysite.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)
from upstreams import validation
from upstreams.health import health_payload
from upstreams.models import Provider, Upstream

_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{7}}{_H16}",
        f"(?:{_H16}:){{1,7}}:",
        f"(?:{_H16}:){{1,6}}:{_H16}",
        f"(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}",
        f"(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}",
        f"(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}",
        f"(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}",
        f"{_H16}:(?::{_H16}){{1,6}}",
        f":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
_HOST = rf"(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]{{0,251}}[A-Za-z0-9_])?|\[(?:{_IPV6})\])"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# A path is "/" and then path characters, slashes and %XX escapes. Written as one optional
# run, not as a repeated segment ("(?:/(?:...)*)*", the same strings): schemathesis's
# coverage phase spent 20 s per run on the nested form (8 s on this one) trying to draw a
# URL of exactly 500 characters.
_PATH = r"(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?"
# http(s), a host (name, IPv4 or [IPv6]), an optional port 1-65535, a path; nothing else:
# no credentials, query or fragment, no spaces. A subset of validation.base_url_errors.
BASE_URL_PATTERN = rf"^https?://{_HOST}(?::{_PORT})?{_PATH}$"
# Printable ASCII with at least one non-space: validation.secret_errors, as a pattern.
PRINTABLE_ASCII_PATTERN = r"^[ -~]*[!-~][ -~]*$"
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"


def _pattern_and_rule(pattern: str, rule):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        errors = rule(value) or ([] if compiled.fullmatch(value) else ["Invalid format."])
        if errors:
            raise serializers.ValidationError(errors)
        return value

    return check


@extend_schema_field({"type": "string", "pattern": NAME_PATTERN, "maxLength": 64})
class NameField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=64, trim_whitespace=False, **kwargs)
        self.validators.append(_pattern_and_rule(NAME_PATTERN, validation.name_errors))


@extend_schema_field({"type": "string", "pattern": BASE_URL_PATTERN, "maxLength": 500})
class BaseURLField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=500, trim_whitespace=False, **kwargs)
        self.validators.append(_pattern_and_rule(BASE_URL_PATTERN, validation.base_url_errors))


@extend_schema_field(
    {
        "type": "string",
        "pattern": PRINTABLE_ASCII_PATTERN,
        "maxLength": validation.MAX_SECRET_LENGTH,
    }
)
class SecretField(StrictCharField):
    def __init__(self, **kwargs):
        # Not trimmed: a secret is stored exactly as given.
        super().__init__(
            max_length=validation.MAX_SECRET_LENGTH,
            trim_whitespace=False,
            write_only=True,
            **kwargs,
        )
        self.validators.append(_pattern_and_rule(PRINTABLE_ASCII_PATTERN, validation.secret_errors))


@extend_schema_field(
    {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": validation.MAX_TIMEOUT_SECONDS,
    }
)
class TimeoutField(StrictFloatField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        errors = validation.timeout_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "string",
            "pattern": validation.MODEL_NAME_PATTERN,
            "maxLength": validation.MAX_MODEL_NAME,
        },
        "maxItems": validation.MAX_MODELS,
    }
)
class ModelNamesField(serializers.ListField):
    """Model names or `*` patterns; the rules are upstreams.validation.models_errors."""

    child = StrictCharField(max_length=validation.MAX_MODEL_NAME, trim_whitespace=False)

    def __init__(self, **kwargs):
        super().__init__(max_length=validation.MAX_MODELS, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        errors = validation.models_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "pattern": validation.MODEL_NAME_PATTERN,
            "maxLength": validation.MAX_MODEL_NAME,
        },
        "maxProperties": validation.MAX_MODELS,
    }
)
class AliasesField(serializers.DictField):
    child = StrictCharField(max_length=validation.MAX_MODEL_NAME, trim_whitespace=False)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        errors = validation.aliases_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class LastFailureSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    reason = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["ok", "cooling"])
    consecutive_failures = serializers.IntegerField()
    cooling_until = serializers.DateTimeField(allow_null=True)
    last_failure = LastFailureSerializer(allow_null=True)


class UpstreamSerializer(serializers.ModelSerializer):
    api_key_masked = serializers.CharField(
        source="secret_hint", read_only=True, help_text="A hint such as `sk-***1234`."
    )
    health = serializers.SerializerMethodField(
        help_text="Failures in a row and cooling (shared by every worker)."
    )

    class Meta:
        model = Upstream
        fields = [
            "id",
            "name",
            "provider",
            "base_url",
            "api_key_masked",
            "is_default",
            "timeout",
            "inject_stream_usage",
            "models",
            "aliases",
            "priority",
            "weight",
            "health",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(HealthSerializer)
    def get_health(self, upstream: Upstream) -> dict:
        try:
            row = upstream.health
        except Upstream.health.RelatedObjectDoesNotExist:
            row = None
        return HealthSerializer(health_payload(row)).data


_TIMEOUT_HELP = "Seconds to wait for the answer's headers and between chunks; null: the default."


class UpstreamCreateSerializer(serializers.Serializer):
    name = NameField(help_text="A unique slug: lowercase letters, digits, `-`, `_`.")
    provider = serializers.ChoiceField(choices=Provider.choices)
    base_url = BaseURLField(help_text="With the version segment, e.g. https://api.openai.com/v1.")
    api_key = SecretField(help_text="The provider's secret; stored encrypted, never shown again.")
    is_default = StrictBooleanField(
        required=False, help_text="Make this the default upstream (the others stop being it)."
    )
    timeout = TimeoutField(required=False, allow_null=True, help_text=_TIMEOUT_HELP)
    inject_stream_usage = StrictBooleanField(
        required=False,
        help_text="Ask for usage in OpenAI chat streams the client did not ask it for "
        "(default true); false for an upstream that refuses stream_options.",
    )
    models = ModelNamesField(
        required=False,
        help_text="Model names or `*` patterns it serves; empty (the default): any model.",
    )
    aliases = AliasesField(
        required=False,
        help_text='{"name a client sends": "model sent upstream"}; only `model` is rewritten. '
        "Names follow the model-name rule too: 1-200 characters, no control characters.",
    )
    priority = StrictIntegerField(
        required=False,
        min_value=-validation.MAX_PRIORITY,
        max_value=validation.MAX_PRIORITY,
        help_text="Lower is tried first (default 0).",
    )
    weight = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=validation.MAX_WEIGHT,
        help_text="Share of requests among upstreams of equal priority (default 1).",
    )


class UpstreamUpdateSerializer(UpstreamCreateSerializer):
    api_key = SecretField(required=False, help_text="A new secret; absent: the secret is kept.")
    is_active = StrictBooleanField(
        required=False, help_text="false stops routing to it at once (as DELETE does)."
    )
