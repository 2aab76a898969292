"""Prices in the admin site. Every write goes through prices.services, like the admin API."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from gatewaysite.instances import mirror_row
from prices.exceptions import InvalidPriceData
from prices.models import Price
from prices.services import price_create, price_delete, price_update

_FIELDS = ("model", "upstream", "input", "output", "cache_read", "cache_write")


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data.get(name) for name in _FIELDS}
        upstream = data.pop("upstream")
        data["upstream_id"] = upstream.pk if upstream is not None else None
        try:
            if change:
                mirror_row(obj, price_update(price=obj, **data))
            else:
                mirror_row(obj, price_create(**data))
        except InvalidPriceData as exc:
            raise ValidationError(str(exc)) from None

    def delete_model(self, request, obj):
        price_delete(price=obj)

    @admin.action(description="Delete the selected prices", permissions=["delete"])
    def delete_selected_prices(self, request, queryset):
        count = 0
        for price in queryset:
            price_delete(price=price)
            count += 1
        self.message_user(request, f"Deleted {count} price(s).", messages.SUCCESS)
