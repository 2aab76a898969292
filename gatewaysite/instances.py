"""Model instances standing for the same row."""

from django.db import models


def mirror_row(target: models.Model, source: models.Model) -> None:
    """Make target hold exactly what source holds of the row (fields, saved state).

    Services write on a fresh, locked copy of a row; the caller's instance (an API
    view's, the admin's unsaved form instance) then mirrors it, and forgets anything
    prefetched, which may have changed.
    """
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db
    target._prefetched_objects_cache = {}
