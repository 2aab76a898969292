from django.db import migrations

# The reservations of a lineage are inserted and deleted once per request, so until
# vacuum comes by, limits_resv_live_idx holds thousands of dead entries per lineage. A
# bitmap scan (what the planner picks for limits_admit's count) visits every one of them
# on every admission: 145 µs a call in section 5 of `make bench`, growing between
# vacuums, and all of it inside the lineage's lock. A plain index scan marks the dead
# entries it meets as such, so later scans skip them: 0.30 ms against 0.04 ms per count
# with 3,000 dead entries (EXPLAIN ANALYZE, PostgreSQL 15). An entry can be marked only
# once no transaction anywhere on the server is older than its deletion: while one is
# (a long report, a backup, an idle-in-transaction session), every scan still visits
# the table pages of the dead entries, as before. Vacuum removes them in any case.


def admit_without_bitmap_scans(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER FUNCTION limits_admit SET enable_bitmapscan = off")


def admit_with_bitmap_scans(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER FUNCTION limits_admit RESET enable_bitmapscan")


class Migration(migrations.Migration):
    dependencies = [
        ("limits", "0002_counts_per_second"),
    ]

    operations = [
        migrations.RunPython(admit_without_bitmap_scans, admit_with_bitmap_scans),
    ]
