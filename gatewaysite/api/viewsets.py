"""The base of every admin viewset: the token door, the envelope, strict filters, UUID ids."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from gatewaysite.api.auth import AdminTokenAuthentication, IsAdminOperator
from gatewaysite.api.filters import AllowListOrdering, parse_uuid
from gatewaysite.api.pagination import AdminPagination


def validated(serializer) -> dict:
    """The serializer's validated data, or the ValidationError our handler answers as 400."""
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AdminViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Declarative: a subclass names its queryset, serializer_class, filterset_class and
    ordering_fields; list (paginated, filtered, ordered) and retrieve come from DRF."""

    authentication_classes = [AdminTokenAuthentication]
    permission_classes = [IsAdminOperator]
    pagination_class = AdminPagination
    filter_backends = [DjangoFilterBackend, AllowListOrdering]
    lookup_field = "pk"
    lookup_url_kwarg = "id"
    # Any segment reaches the view, so a malformed id is a 404 in our shape, not Django's.
    lookup_value_regex = "[^/]+"
    ordering: tuple[str, ...] = ("-created_at", "-pk")
    ordering_fields: tuple[str, ...] = ("created_at",)

    def get_object(self):
        # Filters and ordering are for lists: ?is_active=false does not hide /keys/{id}.
        pk = parse_uuid(self.kwargs[self.lookup_url_kwarg])
        if pk is None:
            raise NotFound("Not found.")
        queryset = self.get_queryset()
        try:
            obj = queryset.get(**{self.lookup_field: pk})
        except queryset.model.DoesNotExist:
            raise NotFound("Not found.") from None
        self.check_object_permissions(self.request, obj)
        return obj


class AdminNotFoundView(APIView):
    """Every /admin/… path that names no endpoint: 404 in the error shape (403 without the token)."""

    authentication_classes = [AdminTokenAuthentication]
    permission_classes = [IsAdminOperator]
    schema = None

    def initial(self, request, *args, **kwargs):
        # Runs for every method, before DRF looks for a handler: auth first, then 404.
        super().initial(request, *args, **kwargs)
        raise NotFound("No such admin API endpoint.")
