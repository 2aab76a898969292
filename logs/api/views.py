"""Admin API for request logs: read-only, newest first."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from gatewaysite.api.auth import AdminTokenAuthentication, IsAdminOperator
from gatewaysite.api.schema import error
from gatewaysite.api.viewsets import AdminViewSet
from logs.api.filters import RequestLogFilter, UsageQueryForm
from logs.api.serializers import RequestLogSerializer, UsageSerializer
from logs.export import CONTENT_TYPES, export_lines
from logs.models import RequestLog
from logs.usage import usage_summary

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

    def perform_content_negotiation(self, request, force=False):
        # ?format= names the export's format here, not one of DRF's renderers; errors
        # are always JSON (None: a method no route takes, answered 405).
        if self.action in ("export", None):
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Export request logs as CSV or JSON Lines (streamed, oldest first)",
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=[*CONTENT_TYPES],
                required=True,
                description="`csv` (one header line) or `jsonl` (one JSON row per line).",
            ),
        ],  # fmt: skip
        responses={
            400: error("`validation_error`: no or an unknown `format`, or a bad filter."),
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
        },
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request):
        fmt = request.query_params.get("format", "")
        if fmt not in CONTENT_TYPES:
            raise ValidationError({"format": ["Must be csv or jsonl."]})
        rows = self.filter_queryset(RequestLog.objects.all())
        response = StreamingHttpResponse(export_lines(rows, fmt), content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="request-logs.{fmt}"'
        return response


class UsageView(APIView):
    """GET /admin/usage: requests, errors, tokens and cost grouped by day, key, upstream or model."""

    authentication_classes = [AdminTokenAuthentication]
    permission_classes = [IsAdminOperator]

    @extend_schema(
        summary="Usage grouped by day, key, upstream or model, with totals",
        parameters=UsageQueryForm.openapi_parameters(),
        responses={200: UsageSerializer, 400: error("`validation_error`: a bad parameter.")},
    )
    def get(self, request):
        form = UsageQueryForm(request.query_params)
        if not form.is_valid():
            raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
        return Response(usage_summary(**form.cleaned_data))
