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
