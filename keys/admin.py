"""API keys in the admin site.

Every write goes through keys.services, as from the admin API, so a revocation
here bumps the keyring version and stops the key on every worker at once.

A plaintext key exists only in the response that shows it: it is rendered
straight onto that page (never a message, a session or a cookie), so no table,
no cookie and no later page ever holds it.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.translation import ngettext

from gatewaysite.presentation import key_status_badge
from keys.admin_display import (
    key_overview,
    lineage_sizes,
    replaced_keys,
    sdk_snippets,
    status_word,
)
from keys.exceptions import KeyNotRotatable
from keys.forms import APIKeyForm, RotateForm
from keys.models import APIKey, KeyStatus
from keys.services import key_create, key_revoke, key_rotate, key_update
from limits.admin import spend_summary_html
from limits.forms import LIMIT_FORM_FIELDS
from upstreams.models import Upstream


def key_status(key: APIKey, now: dt.datetime | None = None) -> str:
    return key.status(at=now)


class LineageFilter(admin.SimpleListFilter):
    """A rotated key and its successors are one key to whoever holds it: by default the
    list shows each lineage once, as its current key."""

    title = "rotation"
    parameter_name = "replaced"

    def lookups(self, request, model_admin):
        return [("all", "Replaced keys too"), ("only", "Replaced keys only")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Current keys (one per lineage)",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        match self.value():
            case "all":
                return queryset
            case "only":
                return queryset.filter(replaced_keys())
        return queryset.exclude(replaced_keys())


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return KeyStatus.choices

    def queryset(self, request, queryset):
        if self.value() in KeyStatus.values:
            return queryset.with_status(self.value(), at=timezone.now())
        return queryset


class KeyChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        sizes = lineage_sizes(list(self.result_list))
        for key in self.result_list:
            key._lineage_size = sizes[key.pk]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    form = APIKeyForm
    list_display = (
        "name",
        "masked",
        "permitted_upstreams",
        "status",
        "lineage",
        "expires_at",
        "last_used_at",
        "created_at",
    )
    list_filter = (LineageFilter, KeyStatusFilter, "upstreams", "expires_at", "created_at")
    search_fields = ("name", "key_prefix", "description")
    filter_horizontal = ("upstreams",)
    readonly_fields = (
        "masked",
        "status",
        "revoked_at",
        "rotated_from",
        "created_at",
        "updated_at",
        "last_used_at",
        "spend",
    )
    actions = ("revoke_selected", "rotate_selected")
    save_as = False

    def get_fieldsets(self, request, obj=None):
        main = (
            None,
            {"fields": ["name", "description", "upstreams", "allowed_models", "expires_at"]},
        )
        limits = ("Limits and budget", {"fields": [*LIMIT_FORM_FIELDS]})
        if obj is None:
            return [main, limits]
        limits[1]["fields"].append("spend")
        record = [
            "masked",
            "status",
            "revoked_at",
            "rotated_from",
            "created_at",
            "updated_at",
            "last_used_at",
        ]
        return [main, limits, ("Key", {"fields": record})]

    def get_changelist(self, request, **kwargs):
        return KeyChangeList

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_upstreams": Upstream.objects.filter(is_active=True).exists(),
        }
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("upstreams", queryset=Upstream.objects.order_by("name").only("id", "name"))
            )
        )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "upstreams":
            kwargs["queryset"] = Upstream.objects.filter(is_active=True).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted: their logs keep pointing at them

    # --- columns ----------------------------------------------------------------

    @admin.display(description="Key", ordering="key_prefix")
    def masked(self, obj: APIKey) -> str:
        return obj.key_masked

    @admin.display(description="Upstreams")
    def permitted_upstreams(self, obj: APIKey) -> str:
        return ", ".join(u.name for u in obj.upstreams.all())

    @admin.display(description="Status")
    def status(self, obj: APIKey) -> str:
        status = key_status(obj)
        if status == KeyStatus.GRACE:
            until = f"works until {timezone.localtime(obj.revoked_at):%Y-%m-%d %H:%M:%S %Z}"
            return format_html("{} {}", key_status_badge("grace", until), until)
        return key_status_badge(status_word(status))

    @admin.display(description="Rotations")
    def lineage(self, obj: APIKey) -> str:
        size = getattr(obj, "_lineage_size", 1)
        if size <= 1:
            return "—"
        return f"{size - 1}× (replaces {size - 1} key{'s' if size > 2 else ''})"

    @admin.display(description="Current window")
    def spend(self, obj: APIKey) -> str:
        return spend_summary_html(obj)

    # --- writes through the services -------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            key, plaintext = key_create(
                actor=request.user,
                name=data["name"],
                description=data.get("description", ""),
                upstream_ids=[u.pk for u in data["upstreams"]],
                expires_at=data.get("expires_at"),
                models=data.get("allowed_models") or [],
                limits=form.limit_changes(),
            )
            request._shown_once_keys = [(key, plaintext)]
            return
        fields = {
            field: data.get(field)
            for field in ("name", "description", "expires_at")
            if field in form.changed_data
        }
        if "upstreams" in form.changed_data:
            fields["upstream_ids"] = [u.pk for u in data["upstreams"]]
        if "allowed_models" in form.changed_data:
            fields["models"] = data.get("allowed_models") or []
        limits = form.limit_changes()
        if fields or limits:
            key_update(key=obj, actor=request.user, limits=limits, **fields)

    def save_related(self, request, form, formsets, change):
        pass  # key_create/key_update set the permitted upstreams themselves

    # The services write each change's one history entry, the same from every surface.
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def add_view(self, request, form_url="", extra_context=None):
        # Saving always leads to the page that shows the new key once.
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            "no_upstreams": not Upstream.objects.filter(is_active=True).exists(),
        }
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        key = self.get_object(request, unquote(object_id))
        if key is not None:
            extra_context = {
                **(extra_context or {}),
                "overview": key_overview(key, request.GET.get("usage", ""), key_status),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_keys_once(request, request._shown_once_keys, title="API key created")

    # --- revoke and rotate (actions and per-key pages) --------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name=f"{prefix}_rotate",
            ),
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name=f"{prefix}_revoke",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        keys = list(queryset)
        if request.POST.get("confirm") != "yes":
            return self._confirm(request, keys, operation="revoke", via_action=True)
        self._revoke(request, keys)
        return None

    @admin.action(
        description="Rotate selected API keys (show new keys once)", permissions=["change"]
    )
    def rotate_selected(self, request, queryset):
        keys = list(queryset)
        form = RotateForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if not form.is_valid():
            return self._confirm(request, keys, operation="rotate", via_action=True, form=form)
        return self._rotate(request, keys, grace_seconds=form.cleaned_data["grace_seconds"])

    def rotate_view(self, request, object_id):
        key = self._key_for_view(request, object_id)
        form = RotateForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            return self._confirm(request, [key], operation="rotate", form=form)
        response = self._rotate(request, [key], grace_seconds=form.cleaned_data["grace_seconds"])
        return response or HttpResponseRedirect(self._change_url(key))

    def revoke_view(self, request, object_id):
        key = self._key_for_view(request, object_id)
        if request.method != "POST":
            return self._confirm(request, [key], operation="revoke")
        self._revoke(request, [key])
        return HttpResponseRedirect(self._change_url(key))

    def _key_for_view(self, request, object_id) -> APIKey:
        key = self.get_object(request, unquote(object_id))
        if key is None:
            raise Http404("No API key with that id.")
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        return key

    def _change_url(self, key: APIKey) -> str:
        return reverse(f"{self.admin_site.name}:keys_apikey_change", args=[key.pk])

    def _revoke(self, request, keys: list[APIKey]) -> None:
        for key in keys:
            key_revoke(key=key, actor=request.user)
        self.message_user(
            request,
            ngettext(
                "Revoked %d API key; it is refused from now on.",
                "Revoked %d API keys; they are refused from now on.",
                len(keys),
            )
            % len(keys),
            messages.SUCCESS,
        )

    def _rotate(self, request, keys: list[APIKey], *, grace_seconds: int):
        shown: list[tuple[APIKey, str]] = []
        for key in keys:
            try:
                new_key, plaintext = key_rotate(
                    key=key, actor=request.user, grace_seconds=grace_seconds
                )
            except KeyNotRotatable as exc:
                self.message_user(request, f"Not rotated: {exc}", messages.WARNING)
                continue
            shown.append((new_key, plaintext))
        if not shown:
            return None
        return self._show_keys_once(
            request,
            shown,
            title="API key rotated" if len(shown) == 1 else "API keys rotated",
            grace_seconds=grace_seconds,
        )

    def _confirm(self, request, keys, *, operation: str, via_action: bool = False, form=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{operation.capitalize()} API {'key' if len(keys) == 1 else 'keys'}",
            "keys": [(k, key_status(k)) for k in keys],
            "operation": operation,
            "via_action": via_action,
            "action_name": f"{operation}_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "form": form,
        }
        return TemplateResponse(request, "admin/keys/apikey/confirm_operation.html", context)

    def _show_keys_once(self, request, shown, *, title: str, grace_seconds: int | None = None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "shown": [
                {
                    "key": key,
                    "plaintext": plaintext,
                    "change_url": self._change_url(key),
                    "snippets": sdk_snippets(
                        gateway_url=request.build_absolute_uri("/"), plaintext=plaintext
                    ),
                }
                for key, plaintext in shown
            ],
            "grace_seconds": grace_seconds,
        }
        response = TemplateResponse(request, "admin/keys/apikey/shown_once.html", context)
        # The only copy of the plaintext: no cache or back-button store may keep it.
        add_never_cache_headers(response)
        response["Referrer-Policy"] = "no-referrer"
        return response
