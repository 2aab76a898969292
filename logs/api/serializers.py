"""What the admin API shows of a request log row: never a key, a secret or a body."""

from __future__ import annotations

from rest_framework import serializers

from logs.models import RequestLog


class RequestLogSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(
        source="request_id",
        read_only=True,
        help_text="The request id, as sent to the client in X-Gateway-Request-ID.",
    )
    api_key_id = serializers.UUIDField(read_only=True, allow_null=True)
    api_key_prefix = serializers.CharField(
        source="api_key.key_prefix", read_only=True, allow_null=True, default=None
    )
    upstream_id = serializers.UUIDField(read_only=True, allow_null=True)
    upstream_name = serializers.CharField(
        source="upstream.name", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = RequestLog
        fields = [
            "id",
            "api_key_id",
            "api_key_prefix",
            "upstream_id",
            "upstream_name",
            "method",
            "path",
            "model",
            "upstream_model",
            "attempts",
            "is_stream",
            "status_code",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "duration_ms",
            "ttfb_ms",
            "error",
            "state",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class UsageSumsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Status 0 (no answer) or 400 and above.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        allow_null=True,
        help_text="USD; null when no request of the group had a known cost.",
    )


class UsageItemSerializer(UsageSumsSerializer):
    day = serializers.DateField(required=False, help_text="With group_by day (UTC).")
    api_key_id = serializers.UUIDField(required=False, allow_null=True)
    key_lineage_id = serializers.UUIDField(required=False, allow_null=True)
    upstream_id = serializers.UUIDField(required=False, allow_null=True)
    model = serializers.CharField(required=False)


class UsageSerializer(serializers.Serializer):
    items = UsageItemSerializer(many=True)
    totals = UsageSumsSerializer()
