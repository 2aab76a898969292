import importlib

from django.db import migrations

# limits_admit, same rule and same answers, with two changes.
#
# The lineage's row is locked FOR NO KEY UPDATE, not FOR UPDATE. A settlement that
# records a budget window's first spend inserts a Spend row, whose foreign key
# PostgreSQL checks by locking the lineage's row FOR KEY SHARE, which FOR UPDATE blocks;
# that settlement already holds the second's counter (it corrects its tokens), which the
# admission holding the lineage wants next. The two waited for each other until
# PostgreSQL's deadlock detector killed one: a request refused with an error, or a
# settlement lost with its log row's ending (limits/tests/test_database_counters.py
# reproduces it; 8 of 6,400 admissions with 16 connections on a fresh lineage).
# FOR NO KEY UPDATE still excludes every other admission, and lets the check through.
#
# Three statements instead of eight: the lock (on its own, since a statement's snapshot
# is taken before it waits, so the counts must come after it); every count in one
# SELECT, which also counts the rows that no longer count, deleted only when there are
# some (at most one second's row per second; a dead worker's reservations) rather than
# by two deletes on every admission; the reservation and the second's count in one
# INSERT with a WITH clause. On its own this was within the noise: 433-507 against
# 477-510 µs of backend CPU per admission and settlement, sequentially on one connection.
ADMIT_FUNCTION = """
CREATE OR REPLACE FUNCTION limits_admit(
    p_limits uuid, p_now double precision, p_expires double precision,
    p_window timestamptz, p_tokens bigint, p_usd numeric,
    p_rpm bigint, p_tpm bigint, p_parallel bigint, p_budget_tokens bigint, p_budget_usd numeric,
    p_rates boolean, p_live boolean, p_spend boolean
) RETURNS TABLE (
    o_reservation bigint, o_admitted boolean, o_recent bigint, o_recent_tokens numeric,
    o_oldest bigint, o_in_flight bigint, o_reserved_tokens numeric, o_reserved_usd numeric,
    o_spent_tokens bigint, o_spent_usd numeric
) LANGUAGE plpgsql SET enable_bitmapscan = off AS $$
DECLARE
    v_first bigint := floor(p_now)::bigint - 60;  -- the oldest second that still counts
    v_stale_seconds bigint;
    v_stale_reservations bigint;
BEGIN
    PERFORM 1 FROM limits_keylimits WHERE id = p_limits FOR NO KEY UPDATE;
    SELECT coalesce(s.recent, 0), coalesce(s.recent_tokens, 0), s.oldest, s.stale,
           r.in_flight, coalesce(r.reserved_tokens, 0), coalesce(r.reserved_usd, 0), r.stale,
           coalesce(b.spent_tokens, 0), coalesce(b.spent_usd, 0)
      INTO o_recent, o_recent_tokens, o_oldest, v_stale_seconds,
           o_in_flight, o_reserved_tokens, o_reserved_usd, v_stale_reservations,
           o_spent_tokens, o_spent_usd
      FROM (SELECT sum(requests) FILTER (WHERE at_second >= v_first) AS recent,
                   sum(tokens) FILTER (WHERE at_second >= v_first) AS recent_tokens,
                   min(at_second) FILTER (WHERE at_second >= v_first) AS oldest,
                   count(*) FILTER (WHERE at_second < v_first) AS stale
              FROM limits_secondcount WHERE p_rates AND limits_id = p_limits) s,
           (SELECT count(*) FILTER (WHERE expires_at > p_now) AS in_flight,
                   sum(tokens) FILTER (WHERE expires_at > p_now AND window_start = p_window)
                       AS reserved_tokens,
                   sum(usd) FILTER (WHERE expires_at > p_now AND window_start = p_window)
                       AS reserved_usd,
                   count(*) FILTER (WHERE expires_at <= p_now) AS stale
              FROM limits_reservation WHERE p_live AND limits_id = p_limits) r,
           (SELECT max(spent_tokens) AS spent_tokens, max(spent_usd) AS spent_usd
              FROM limits_spend
             WHERE p_spend AND limits_id = p_limits AND window_start = p_window) b;
    IF v_stale_seconds > 0 THEN
        DELETE FROM limits_secondcount WHERE limits_id = p_limits AND at_second < v_first;
    END IF;
    IF v_stale_reservations > 0 THEN
        DELETE FROM limits_reservation WHERE limits_id = p_limits AND expires_at <= p_now;
    END IF;
    o_admitted := NOT (
        (p_rpm IS NOT NULL AND o_recent >= p_rpm)
        OR (p_tpm IS NOT NULL AND o_recent_tokens >= p_tpm)
        OR (p_parallel IS NOT NULL AND o_in_flight >= p_parallel)
        OR (p_budget_tokens IS NOT NULL AND p_tokens > 0
            AND p_tokens > p_budget_tokens - o_spent_tokens - o_reserved_tokens)
        OR (p_budget_usd IS NOT NULL AND p_usd IS NOT NULL
            AND p_usd > p_budget_usd - o_spent_usd - o_reserved_usd)
    );
    IF o_admitted AND (p_rates OR p_live) THEN
        WITH counted AS (
            INSERT INTO limits_secondcount (limits_id, at_second, requests, tokens)
            SELECT p_limits, v_first + 60, 1, p_tokens WHERE p_rates
            ON CONFLICT (limits_id, at_second) DO UPDATE
            SET requests = limits_secondcount.requests + 1,
                tokens = limits_secondcount.tokens + EXCLUDED.tokens
        )
        INSERT INTO limits_reservation (limits_id, expires_at, window_start, tokens, usd)
        SELECT p_limits, p_expires, p_window, p_tokens, p_usd WHERE p_live
        RETURNING id INTO o_reservation;
    END IF;
    RETURN NEXT;
END
$$;
"""


def admit_in_three_statements(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADMIT_FUNCTION)


def admit_in_eight_statements(apps, schema_editor):
    # Back to the function as migration 0002 made it, with 0003's setting.
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("limits.migrations.0002_counts_per_second")
        schema_editor.execute(previous.ADMIT_FUNCTION)
        schema_editor.execute("ALTER FUNCTION limits_admit SET enable_bitmapscan = off")


class Migration(migrations.Migration):
    dependencies = [
        ("limits", "0003_admit_without_bitmap_scans"),
    ]

    operations = [
        migrations.RunPython(admit_in_three_statements, admit_in_eight_statements),
    ]
