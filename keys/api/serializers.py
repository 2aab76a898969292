"""What the admin API reads and writes for API keys. Never the plaintext (except once,
in `key` of a create or rotate answer) and never the hash."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gatewaysite.api.fields import (
    RFC3339DateTimeField,
    StrictCharField,
    StrictIntegerField,
)
from keys.models import APIKey
from keys.services import MAX_GRACE_SECONDS
from limits.api.serializers import (
    LIMIT_READ_FIELDS,
    KeyLimitsReadMixin,
    KeyLimitsWriteSerializer,
)
from upstreams.api.serializers import ModelNamesField


class KeyStatus:
    ACTIVE = "active"
    GRACE = "grace"  # rotated with a grace period: still works until revoked_at
    REVOKED = "revoked"
    EXPIRED = "expired"
    CHOICES = (ACTIVE, GRACE, REVOKED, EXPIRED)


def key_status(key: APIKey, now) -> str:
    if not key.is_active or (key.revoked_at is not None and key.revoked_at <= now):
        return KeyStatus.REVOKED
    if key.expires_at is not None and key.expires_at <= now:
        return KeyStatus.EXPIRED
    if key.revoked_at is not None:
        return KeyStatus.GRACE
    return KeyStatus.ACTIVE


class KeySerializer(KeyLimitsReadMixin, serializers.ModelSerializer):
    upstream_ids = serializers.SerializerMethodField()
    key_masked = serializers.CharField(read_only=True)
    is_active = serializers.SerializerMethodField(
        help_text="Whether the key authenticates now: not revoked, not past a rotation's "
        "grace, not expired (`status` says which)."
    )
    status = serializers.SerializerMethodField()
    models = serializers.ListField(
        source="allowed_models",
        child=serializers.CharField(),
        read_only=True,
        help_text="Model names or `*` patterns this key may ask for; empty: any.",
    )

    class Meta:
        model = APIKey
        fields = [
            "id",
            "name",
            "description",
            "key_prefix",
            "key_masked",
            "upstream_ids",
            "models",
            "is_active",
            "status",
            "expires_at",
            "revoked_at",
            "rotated_from",
            "last_used_at",
            "created_at",
            "updated_at",
            *LIMIT_READ_FIELDS,
        ]
        read_only_fields = fields

    def _now(self):
        # One "now" per answer, so a page never mixes two views of time.
        return self.context.setdefault("now", timezone.now())

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_upstream_ids(self, key: APIKey) -> list[str]:
        return sorted(str(u.pk) for u in key.upstreams.all())

    def get_is_active(self, key: APIKey) -> bool:
        return key_status(key, self._now()) in (KeyStatus.ACTIVE, KeyStatus.GRACE)

    @extend_schema_field(serializers.ChoiceField(choices=KeyStatus.CHOICES))
    def get_status(self, key: APIKey) -> str:
        return key_status(key, self._now())


class KeyCreatedSerializer(KeySerializer):
    key = serializers.SerializerMethodField(
        help_text="The plaintext key: shown in this answer only, never again."
    )

    class Meta(KeySerializer.Meta):
        fields = ["key", *KeySerializer.Meta.fields]
        read_only_fields = fields

    def get_key(self, key: APIKey) -> str:
        return self.context["plaintext"]


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "minItems": 1,
        "maxItems": 1000,
    }
)
class UpstreamIdsField(serializers.ListField):
    """A non-empty list of upstream ids; which exist and are active is the service's call."""

    child = StrictCharField(max_length=64)

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, max_length=1000, **kwargs)


class KeyWriteSerializer(KeyLimitsWriteSerializer):
    # Not trimmed: what is sent is what is stored (and the schema's minLength means it).
    name = StrictCharField(min_length=1, max_length=200, trim_whitespace=False)
    description = StrictCharField(
        max_length=2000, required=False, allow_blank=True, trim_whitespace=False
    )
    upstream_ids = UpstreamIdsField(
        help_text="Ids of the upstreams the key may use. Names are accepted too, here or "
        'in `upstreams` (`["openai"]`), which is added to this list.'
    )
    models = ModelNamesField(
        required=False,
        allow_null=True,
        help_text="Model names or `*` patterns the key may ask for; empty or null: any "
        "model its upstreams serve.",
    )
    expires_at = RFC3339DateTimeField(
        required=False,
        allow_null=True,
        help_text="When the key stops working; null for never. A past time expires it now.",
    )

    def to_internal_value(self, data):
        # `upstreams` (names) joins `upstream_ids` before validation: the service resolves
        # each entry, id or name, and lists those that match no active upstream. It is
        # not a declared field, so the schema keeps `upstream_ids` as the one required list.
        if isinstance(data, dict) and "upstreams" in data:
            names = data["upstreams"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise serializers.ValidationError({"upstreams": ["Expected a list of names."]})
            ids = data.get("upstream_ids") or []
            data = {**data, "upstream_ids": [*ids, *names] if isinstance(ids, list) else ids}
        return super().to_internal_value(data)


class KeyRotateSerializer(serializers.Serializer):
    grace_seconds = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        help_text="Seconds the old key keeps working; 0 or absent: it stops now.",
    )
