"""Admin API for API keys: validate with a serializer, call one service, serialize."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from gatewaysite.api.audit import audit_action, audit_added, audit_changed
from gatewaysite.api.schema import error
from gatewaysite.api.viewsets import AdminViewSet
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
from limits.services import limits_set
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

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        data = KeySerializer(page, many=True, context=limits_context(page)).data
        return self.get_paginated_response(data)

    def retrieve(self, request, **kwargs):
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(
        summary="Create a key",
        request=KeyWriteSerializer,
        responses={201: KeyCreatedSerializer, **_WRITE_ERRORS},
    )
    def create(self, request):
        data = _valid(KeyWriteSerializer(data=request.data))
        limits = split_limit_fields(data)
        with transaction.atomic():
            key, plaintext = services.key_create(**data)
            limits_set(key=key, **limits)
            audit_added(key)
        return _created(key, plaintext)

    @extend_schema(
        summary="Change a key's name, description, upstreams or expiry",
        request=KeyWriteSerializer(partial=True),
        responses={200: KeySerializer, **_WRITE_ERRORS},
    )
    def partial_update(self, request, **kwargs):
        key = self.get_object()
        data = _valid(KeyWriteSerializer(data=request.data, partial=True))
        limits = split_limit_fields(data)
        if data or limits:
            with transaction.atomic():
                if data:
                    key = services.key_update(key=key, **data)
                limits_set(key=key, **limits)
                audit_changed(key, fields={**data, **limits})
        if limits:
            key = self.get_object()  # the limits as saved, not as first read
        return Response(KeySerializer(key).data)

    @extend_schema(summary="Revoke a key (it stops working at once)", responses={204: None})
    def destroy(self, request, **kwargs):
        key = self.get_object()
        with transaction.atomic():
            services.key_revoke(key=key)
            audit_action(key, action="Revoked through the admin API.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate a key: a new key with the same upstreams; the old one stops",
        request=KeyRotateSerializer,
        responses={
            201: KeyCreatedSerializer,
            409: error("`key_not_rotatable`: the key is revoked or expired."),
        },
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, **kwargs):
        key = self.get_object()
        grace = _valid(KeyRotateSerializer(data=request.data)).get("grace_seconds") or 0
        with transaction.atomic():
            new_key, plaintext = services.key_rotate(key=key, grace_seconds=grace)
            ends = f"ends after {grace} s grace" if grace else "stops now"
            audit_action(
                key,
                action=f"Rotated through the admin API; replaced by {new_key.key_prefix}…, {ends}.",
            )
            audit_added(new_key, note=f"rotated from {key.key_prefix}…")
        return _created(new_key, plaintext)


def _valid(serializer) -> dict:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _created(key: APIKey, plaintext: str) -> Response:
    body = KeyCreatedSerializer(key, context={"plaintext": plaintext}).data
    return Response(body, status=status.HTTP_201_CREATED)
