"""OpenAPI conventions of the admin API: every operation documents its error answers.

``AdminAutoSchema`` adds, to what drf-spectacular infers, the error responses
an operation can give in the one error shape: 403 everywhere, 404 for an id in
the path or a page past the end, 400 for bad filters, pages or bodies, 415 for
a body that is not JSON. Views add their own (a 409) with ``extend_schema``.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from gatewaysite.api.fields import NO_NUL_PATTERN

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(help_text="A stable code, e.g. `not_found`."),
        "message": serializers.CharField(help_text="A sentence for people."),
        "details": serializers.JSONField(
            required=False,
            help_text="Field errors for `validation_error`, the bad ids for `invalid_upstream`.",
        ),
    },
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


class AdminAutoSchema(AutoSchema):
    def _resolve_path_parameters(self, variables):
        # Routes take any segment (so a bad id is our 404, not Django's), but an id is a UUID.
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"] == "id":
                parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameters

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # Every text input refuses NUL (DRF's CharField does; PostgreSQL could not store it).
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(schema)
        ):
            schema["pattern"] = NO_NUL_PATTERN
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = {"403": "`forbidden`: no valid admin token."}
        if "{" in self.path:
            extra["404"] = "`not_found`: no such id (also for an id that is not a UUID)."
        if self._is_list_view():
            extra["400"] = "`validation_error`: a bad filter, ordering, page or page_size."
            extra["404"] = "`not_found`: a page past the last one."
        if self.method in ("POST", "PUT", "PATCH"):
            extra["400"] = "`validation_error` (field errors in `details`) or `parse_error`."
            extra["415"] = "`unsupported_media_type`: the body must be JSON."
        for code, description in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(error(description), code)
        return responses


class AdminTokenScheme(OpenApiAuthenticationExtension):
    target_class = "gatewaysite.api.auth.AdminTokenAuthentication"
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The gateway's ADMIN_TOKEN: `Authorization: Bearer <ADMIN_TOKEN>`.",
        }
