"""Prices in the admin site. Every write goes through prices.services, like the admin API,
which writes the history entry and hands back the fresh row the admin answers with."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from gatewaysite.admin_saving import ServiceSavedAdmin
from prices.exceptions import InvalidPriceData
from prices.models import Price
from prices.services import price_create, price_delete, price_update

_FIELDS = ("model", "upstream", "input", "output", "cache_read", "cache_write")


@admin.register(Price)
class PriceAdmin(ServiceSavedAdmin, admin.ModelAdmin):
    list_display = (*_FIELDS, "updated_at")
    list_filter = ("upstream",)
    search_fields = ("model",)
    ordering = ("model",)
    fields = _FIELDS
    readonly_fields = ()
    actions = ("delete_selected_prices",)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the service's delete bumps the version
        return actions

    def save_through_service(self, request, form, current):
        data = {name: form.cleaned_data.get(name) for name in _FIELDS}
        upstream = data.pop("upstream")
        data["upstream_id"] = upstream.pk if upstream is not None else None
        try:
            if current is not None:
                return price_update(price=current, actor=request.user, **data)
            return price_create(actor=request.user, **data)
        except InvalidPriceData as exc:
            raise ValidationError(str(exc)) from None

    def delete_model(self, request, obj):
        price_delete(price=obj, actor=request.user)

    @admin.action(description="Delete the selected prices", permissions=["delete"])
    def delete_selected_prices(self, request, queryset):
        count = 0
        for price in queryset:
            price_delete(price=price, actor=request.user)
            count += 1
        self.message_user(request, f"Deleted {count} price(s).", messages.SUCCESS)
