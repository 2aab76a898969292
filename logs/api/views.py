"""Admin API for request logs: read-only, newest first."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response

from gatewaysite.api.viewsets import AdminViewSet
from logs.api.filters import RequestLogFilter
from logs.api.serializers import RequestLogSerializer
from logs.models import RequestLog

# Every log column, and of the joined key and upstream only what is shown: the key's
# hash is never even read.
_COLUMNS = (
    *(f.name for f in RequestLog._meta.concrete_fields),
    "api_key__key_prefix",
    "upstream__name",
)


@extend_schema_view(
    list=extend_schema(summary="List request logs", responses=RequestLogSerializer(many=True)),
    retrieve=extend_schema(
        summary="Get one request log by its request id", responses=RequestLogSerializer
    ),
)
class RequestLogViewSet(AdminViewSet):
    queryset = RequestLog.objects.select_related("api_key", "upstream").only(*_COLUMNS)
    serializer_class = RequestLogSerializer
    filterset_class = RequestLogFilter
    lookup_field = "request_id"
    ordering_fields = ("created_at", "status_code", "duration_ms", "total_tokens")

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(RequestLogSerializer(page, many=True).data)

    def retrieve(self, request, **kwargs):
        return Response(RequestLogSerializer(self.get_object()).data)
