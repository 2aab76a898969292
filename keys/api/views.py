"""Admin API for API keys: validate with a serializer, call one service, serialize."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from gatewaysite.api.schema import error
from gatewaysite.api.viewsets import AdminViewSet, validated
from gatewaysite.history import ADMIN_API
from keys import services
from keys.api.filters import KeyFilter
from keys.api.serializers import (
    KeyCreatedSerializer,
    KeyRotateSerializer,
    KeySerializer,
    KeyWriteSerializer,
)
from keys.models import APIKey
from limits.api.serializers import limits_context, split_limit_fields
from upstreams.models import Upstream

_WRITE_ERRORS = {
    400: error(
        "`validation_error`, `missing_upstreams` (empty or no `upstream_ids` / `upstreams`) or "
        "`invalid_upstream` (unknown or inactive ids or names, listed in `details.upstream_ids`)."
    ),
}


@extend_schema_view(
    list=extend_schema(summary="List keys", responses=KeySerializer(many=True)),
    retrieve=extend_schema(summary="Get a key", responses=KeySerializer),
)
class KeyViewSet(AdminViewSet):
    queryset = APIKey.objects.select_related("limits_link__limits").prefetch_related(
        Prefetch("upstreams", queryset=Upstream.objects.only("id"))
    )
    serializer_class = KeySerializer
    filterset_class = KeyFilter
    ordering_fields = ("created_at", "name", "expires_at", "last_used_at")

    def get_serializer(self, *args, **kwargs):
        if kwargs.get("many"):  # a page of keys: their limits are read at once
            kwargs["context"] = {**self.get_serializer_context(), **limits_context(args[0])}
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        summary="Create a key",
        request=KeyWriteSerializer,
        responses={201: KeyCreatedSerializer, **_WRITE_ERRORS},
    )
    def create(self, request):
        data = validated(KeyWriteSerializer(data=request.data))
        limits = split_limit_fields(data)
        key, plaintext = services.key_create(actor=ADMIN_API, limits=limits, **data)
        return _created(key, plaintext)

    @extend_schema(
        summary="Change a key's name, description, upstreams or expiry",
        request=KeyWriteSerializer(partial=True),
        responses={200: KeySerializer, **_WRITE_ERRORS},
    )
    def partial_update(self, request, **kwargs):
        key = self.get_object()
        data = validated(KeyWriteSerializer(data=request.data, partial=True))
        limits = split_limit_fields(data)
        if data or limits:
            services.key_update(key=key, actor=ADMIN_API, limits=limits, **data)
            key = self.get_object()  # as saved, limits included
        return Response(KeySerializer(key).data)

    @extend_schema(summary="Revoke a key (it stops working at once)", responses={204: None})
    def destroy(self, request, **kwargs):
        key = self.get_object()
        services.key_revoke(key=key, actor=ADMIN_API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate a key: a new key with the same upstreams; the old one stops",
        request=KeyRotateSerializer,
        responses={
            201: KeyCreatedSerializer,
            409: error(
                "`conflict`: the key was already rotated (in grace: rotate its successor), "
                "or is revoked or expired."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, **kwargs):
        key = self.get_object()
        grace = validated(KeyRotateSerializer(data=request.data)).get("grace_seconds") or 0
        new_key, plaintext = services.key_rotate(key=key, actor=ADMIN_API, grace_seconds=grace)
        return _created(new_key, plaintext)


def _created(key: APIKey, plaintext: str) -> Response:
    body = KeyCreatedSerializer(key, context={"plaintext": plaintext}).data
    return Response(body, status=status.HTTP_201_CREATED)
