"""What OPTIONS answers on the admin API (DRF's DEFAULT_METADATA_CLASS).

Only the resource's name and methods: DRF's default would introspect the
serializers, which the schema at /openapi.json already describes.
Imported by DRF's settings while rest_framework.views loads, so it imports nothing more.
"""

from rest_framework.metadata import BaseMetadata


class AdminMetadata(BaseMetadata):
    def determine_metadata(self, request, view):
        return {"name": view.get_view_name(), "allow": view.allowed_methods}
