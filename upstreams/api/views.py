"""Admin API for upstreams: validate with a serializer, call one service, serialize.

Every service bumps the registry version and writes the one history entry (as
``admin-api``) in its transaction, so each change is in force on every worker's next
request (see upstreams.registry) and in the admin site's history.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from gatewaysite.api.schema import error
from gatewaysite.api.viewsets import AdminViewSet, validated
from gatewaysite.history import ADMIN_API
from upstreams import services
from upstreams.api.filters import UpstreamFilter
from upstreams.api.serializers import (
    UpstreamCreateSerializer,
    UpstreamSerializer,
    UpstreamUpdateSerializer,
)
from upstreams.models import Upstream
from upstreams.selectors import upstream_test


class UpstreamTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether it answered 2xx with a model list.")
    status = serializers.IntegerField(help_text="The upstream's status; 0 when none came.")
    latency_ms = serializers.IntegerField()
    message = serializers.CharField()


_CONFLICT = {409: error("`conflict`: the name is taken, or a concurrent change won.")}


@extend_schema_view(
    list=extend_schema(summary="List upstreams", responses=UpstreamSerializer(many=True)),
    retrieve=extend_schema(summary="Get an upstream", responses=UpstreamSerializer),
)
class UpstreamViewSet(AdminViewSet):
    queryset = Upstream.objects.select_related("health")
    serializer_class = UpstreamSerializer
    filterset_class = UpstreamFilter
    ordering_fields = ("created_at", "name", "provider")

    @extend_schema(
        summary="Create an upstream (routable at once)",
        request=UpstreamCreateSerializer,
        responses={201: UpstreamSerializer, **_CONFLICT},
    )
    def create(self, request):
        data = validated(UpstreamCreateSerializer(data=request.data))
        upstream = services.upstream_create(actor=ADMIN_API, **data)
        return Response(UpstreamSerializer(upstream).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace an upstream's fields (api_key may be left out to keep it)",
        request=UpstreamUpdateSerializer,
        responses={200: UpstreamSerializer, **_CONFLICT},
    )
    def update(self, request, **kwargs):
        return self._change(request, partial=False)

    @extend_schema(
        summary="Change some of an upstream's fields",
        request=UpstreamUpdateSerializer(partial=True),
        responses={200: UpstreamSerializer, **_CONFLICT},
    )
    def partial_update(self, request, **kwargs):
        return self._change(request, partial=True)

    @extend_schema(summary="Deactivate an upstream (soft delete)", responses={204: None})
    def destroy(self, request, **kwargs):
        services.upstream_deactivate(upstream=self.get_object(), actor=ADMIN_API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Test an upstream: one GET <base_url>/models with its secret (no tokens spent)",
        request=None,
        responses={200: UpstreamTestSerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, **kwargs):
        probe = upstream_test(upstream=self.get_object())
        return Response(UpstreamTestSerializer(probe).data)

    def _change(self, request, *, partial: bool) -> Response:
        upstream = self.get_object()
        data = validated(UpstreamUpdateSerializer(data=request.data, partial=partial))
        if data:
            upstream = services.upstream_update(upstream=upstream, actor=ADMIN_API, **data)
        return Response(UpstreamSerializer(upstream).data)
