"""Admin API for prices: validate with a serializer, call one service, serialize.

Every service bumps the price table's version and writes the one history entry (as
``admin-api``) in its transaction, so a change prices every request that finishes
after it, on every worker, and no row before.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from gatewaysite.api.exceptions import AdminAPIError
from gatewaysite.api.schema import error
from gatewaysite.api.viewsets import AdminViewSet, validated
from gatewaysite.history import ADMIN_API
from prices import services
from prices.api.filters import PriceFilter
from prices.api.serializers import PriceCreateSerializer, PriceSerializer
from prices.exceptions import InvalidPriceData, PriceExists
from prices.selectors import prices_list

_CONFLICT = {409: error("`conflict`: a price for this model and upstream exists already.")}


@extend_schema_view(
    list=extend_schema(summary="List prices", responses=PriceSerializer(many=True)),
    retrieve=extend_schema(summary="Get a price", responses=PriceSerializer),
)
class PriceViewSet(AdminViewSet):
    queryset = prices_list()
    serializer_class = PriceSerializer
    filterset_class = PriceFilter
    ordering_fields = ("created_at", "model", "updated_at")

    @extend_schema(
        summary="Add a price (applies to requests that finish from now on)",
        request=PriceCreateSerializer,
        responses={201: PriceSerializer, **_CONFLICT},
    )
    def create(self, request):
        data = validated(PriceCreateSerializer(data=request.data))
        with _as_validation():
            price = services.price_create(actor=ADMIN_API, **data)
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace a price's fields",
        request=PriceCreateSerializer,
        responses={200: PriceSerializer, **_CONFLICT},
    )
    def update(self, request, **kwargs):
        return self._change(request, partial=False)

    @extend_schema(
        summary="Change some of a price's fields",
        request=PriceCreateSerializer(partial=True),
        responses={200: PriceSerializer, **_CONFLICT},
    )
    def partial_update(self, request, **kwargs):
        return self._change(request, partial=True)

    @extend_schema(
        summary="Delete a price (rows already priced keep their cost)", responses={204: None}
    )
    def destroy(self, request, **kwargs):
        services.price_delete(price=self.get_object(), actor=ADMIN_API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _change(self, request, *, partial: bool) -> Response:
        price = self.get_object()
        data = validated(PriceCreateSerializer(data=request.data, partial=partial))
        if not partial:
            data.setdefault("upstream_id", None)
            data.setdefault("cache_read", None)
            data.setdefault("cache_write", None)
        if data:
            with _as_validation():
                price = services.price_update(price=price, actor=ADMIN_API, **data)
        return Response(PriceSerializer(price).data)


class _as_validation:  # noqa: N801 - used as a context manager, like a function
    """A service's InvalidPriceData as DRF's 400, with the field errors as details."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, PriceExists):
            raise AdminAPIError(
                409, "conflict", "A price for this model exists already", exc.errors
            )
        if isinstance(exc, InvalidPriceData):
            raise ValidationError(exc.errors) from None
        return False
