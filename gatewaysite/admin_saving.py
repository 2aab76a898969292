"""The admin site's save path for models whose writes go through a service.

Django's ModelAdmin saves the form's instance in save_model and then logs and redirects
with that same instance. Here the service makes the row, writes the one history entry
and returns the fresh saved instance; the admin answers with that instance (its id, its
name in the message) and writes no history of its own, so the admin site's entry is the
same as the admin API's and the commands'.
"""

from __future__ import annotations

from django.db import models
from django.forms import ModelForm
from django.http import HttpRequest


class ServiceSavedAdmin:
    """Mix into a ModelAdmin and implement save_through_service()."""

    def save_through_service(
        self, request: HttpRequest, form: ModelForm, current: models.Model | None
    ) -> models.Model:
        """Call the model's create (current is None) or update service; return its fresh row."""
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        request._service_saved = self.save_through_service(request, form, obj if change else None)

    def save_related(self, request, form, formsets, change):
        pass  # the service saved everything, relations included

    def log_addition(self, request, obj, message):
        return None  # the service wrote the entry

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None

    def response_add(self, request, obj, post_url_continue=None):
        return super().response_add(request, request._service_saved, post_url_continue)

    def response_change(self, request, obj):
        return super().response_change(request, request._service_saved)
