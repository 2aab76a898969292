"""The admin site's forms for API keys."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from keys.models import APIKey
from keys.services import MAX_GRACE_SECONDS
from limits.forms import KeyLimitsFormFields
from upstreams.validation import models_errors, normalize_models

# A week: long enough to roll a key out to every client, short enough to be a transition.


class APIKeyForm(KeyLimitsFormFields, forms.ModelForm):
    """Name, description, permitted upstreams and expiry; the key itself is generated."""

    class Meta:
        model = APIKey
        fields = ["name", "description", "upstreams", "allowed_models", "expires_at"]
        error_messages = {
            "upstreams": {"required": "Choose at least one upstream this key may use."},
        }
        help_texts = {
            "upstreams": "The upstreams this key may use (only active ones are listed).",
            "expires_at": "Empty: the key does not expire (UTC).",
            "allowed_models": 'Model names or * patterns it may ask for, e.g. ["gpt-4o*"]; '
            "[] allows any model its upstreams serve.",
        }
        labels = {"allowed_models": "Models"}

    def clean_allowed_models(self):
        value = self.cleaned_data.get("allowed_models") or []
        errors = models_errors(value)
        if errors:
            raise forms.ValidationError(errors)
        return normalize_models(value)

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        changed = self.instance._state.adding or "expires_at" in self.changed_data
        if value is not None and changed and value <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return value


class RotateForm(forms.Form):
    """The confirmation step of a rotation: how long the old key keeps working."""

    grace_seconds = forms.IntegerField(
        label="Grace period (seconds)",
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        initial=0,
        required=False,
        help_text="0 stops the old key now; otherwise it keeps working this long.",
    )

    def clean_grace_seconds(self) -> int:
        return self.cleaned_data.get("grace_seconds") or 0
