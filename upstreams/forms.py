"""The admin site's upstream form: the same field rules as the admin API, and a write-only secret."""

from __future__ import annotations

from django import forms

from upstreams import validation
from upstreams.models import Upstream


class UpstreamForm(forms.ModelForm):
    # Write-only: PasswordInput never renders a value back, not even after a
    # validation error, and "new-password" keeps browsers from filling in the
    # operator's own saved login password.
    api_key = forms.CharField(
        label="Secret (API key)",
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
        help_text="The provider's API key. Stored encrypted and never shown again.",
    )

    class Meta:
        model = Upstream
        fields = [
            "name",
            "provider",
            "base_url",
            "api_key",
            "is_default",
            "timeout",
            "inject_stream_usage",
            "models",
            "aliases",
            "priority",
            "weight",
            "is_active",
        ]
        help_texts = {
            "name": "A slug clients send in X-Upstream-Name.",
            "base_url": "With the version segment, e.g. https://api.openai.com/v1.",
            "is_default": "Making this the default clears the previous default.",
            "timeout": "Seconds to wait for headers and between chunks; empty means the default.",
            "models": 'Model names or * patterns it serves, e.g. ["gpt-4o", "gpt-4.1*"]; '
            "[] serves any model.",
            "aliases": 'e.g. {"gpt-4o": "my-azure-deployment"}: only the body\'s model is '
            "rewritten.",
            "priority": "Lower is tried first.",
            "weight": "Share of requests among upstreams of equal priority.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for optional in ("models", "aliases", "priority", "weight"):
            self.fields[optional].required = False
        if self.instance._state.adding:
            self.fields["api_key"].required = True
        else:
            self.fields["api_key"].help_text = (
                f"Currently {self.instance.secret_hint}. Leave empty to keep it; "
                "a new value replaces it and is stored encrypted."
            )

    def _rule(self, field: str, check) -> object:
        value = self.cleaned_data.get(field)
        errors = check(value)
        if errors:
            raise forms.ValidationError(errors)
        return value

    def clean_name(self):
        return self._rule("name", validation.name_errors)

    def clean_base_url(self):
        return self._rule("base_url", validation.base_url_errors)

    def clean_timeout(self):
        return self._rule("timeout", validation.timeout_errors)

    def clean_models(self):
        self.cleaned_data["models"] = self.cleaned_data.get("models") or []  # empty: any
        return validation.normalize_models(self._rule("models", validation.models_errors))

    def clean_aliases(self):
        self.cleaned_data["aliases"] = self.cleaned_data.get("aliases") or {}
        return self._rule("aliases", validation.aliases_errors)

    def clean_priority(self):
        if self.cleaned_data.get("priority") is None:
            self.cleaned_data["priority"] = 0
        return self._rule("priority", validation.priority_errors)

    def clean_weight(self):
        if self.cleaned_data.get("weight") is None:
            self.cleaned_data["weight"] = 1
        return self._rule("weight", validation.weight_errors)

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key") or ""
        if not value and not self.instance._state.adding:
            return ""  # keep the current secret
        errors = validation.secret_errors(value)
        if errors:
            raise forms.ValidationError(errors)
        return value

    def _get_validation_exclusions(self):
        # "At most one default" is kept by upstream_create/upstream_update, which
        # clear the previous default in the same transaction; here it is no error.
        exclude = super()._get_validation_exclusions()
        exclude.add("is_default")
        return exclude
