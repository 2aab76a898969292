"""The admin site's forms for API keys."""

from __future__ import annotations

from django import forms

from keys.exceptions import InvalidKeyData
from keys.models import APIKey
from keys.services import MAX_GRACE_SECONDS, key_check_expiry, key_check_grace
from limits.forms import KeyLimitsFormFields
from upstreams.validation import models_errors, normalize_models


def _rule(check, field: str, *args, **kwargs) -> None:
    """Run one of the keys services' rules; its refusal becomes this field's error."""
    try:
        check(*args, **kwargs)
    except InvalidKeyData as exc:
        raise forms.ValidationError(exc.errors[field]) from None


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
        current = None if self.instance._state.adding else self.instance.expires_at
        _rule(key_check_expiry, "expires_at", value, current=current)
        return value


class RotateForm(forms.Form):
    """The confirmation step of a rotation: how long the old key keeps working."""

    grace_seconds = forms.IntegerField(
        label="Grace period (seconds)",
        initial=0,
        required=False,
        help_text=f"0 stops the old key now; otherwise it keeps working this long "
        f"(at most {MAX_GRACE_SECONDS}, 30 days).",
    )

    def clean_grace_seconds(self) -> int:
        value = self.cleaned_data.get("grace_seconds") or 0
        _rule(key_check_grace, "grace_seconds", value)
        return value
