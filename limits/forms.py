"""The limit fields of a key's form on the admin site (saved through limits_set, whose
range rule they show as field errors)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from limits import windows
from limits.models import KeyLimits, KeyLimitsLink
from limits.validation import limits_errors

LIMIT_FORM_FIELDS = (
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budget_usd",
    "budget_tokens",
    "budget_period",
)


class KeyLimitsFormFields(forms.Form):
    """Mixed into a key's ModelForm: empty means no limit."""

    rpm_limit = forms.IntegerField(
        label="Requests per minute", required=False, min_value=0, help_text="Rolling 60 s."
    )
    tpm_limit = forms.IntegerField(label="Tokens per minute", required=False, min_value=0)
    max_parallel = forms.IntegerField(
        label="Requests in flight at once", required=False, min_value=0
    )
    budget_usd = forms.DecimalField(
        label="Budget (USD)", required=False, min_value=Decimal(0), max_digits=24, decimal_places=10
    )
    budget_tokens = forms.IntegerField(label="Budget (tokens)", required=False, min_value=0)
    budget_period = forms.ChoiceField(
        label="Budget period",
        choices=KeyLimits.Period.choices,
        initial=windows.MONTH,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        if instance is None or instance.pk is None:
            return
        link = KeyLimitsLink.objects.select_related("limits").filter(key_id=instance.pk).first()
        if link is not None:
            for name in LIMIT_FORM_FIELDS:
                self.initial[name] = getattr(link.limits, name)

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned[name] for name in LIMIT_FORM_FIELDS if name in cleaned}
        for name, messages in limits_errors(values).items():
            self.add_error(name, messages)
        return cleaned

    def limit_changes(self) -> dict:
        """The limit fields that changed, for limits_set."""
        return {
            name: self.cleaned_data.get(name)
            for name in LIMIT_FORM_FIELDS
            if name in self.changed_data
        }
