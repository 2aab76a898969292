import importlib

from django.db import migrations, models

# A settlement writes only its own reservation (what the request recorded), no longer
# the rows every request of the key shares: the window's spend and the second's tokens.
# Those two updates cost about 100-160 µs each per request with 16 connections on one
# key (docs/performance.md), however the rows were split. The settled rows count as
# spent (and correct their second's tokens) until an admission, which holds the
# lineage's lock anyway, finds `p_fold_after` of them and folds them into Spend and
# SecondCount in one statement.
#
# What a settled reservation recorded is spent in its window when it was admitted under
# a budget (`budgeted`, as the ticket's policy decides with Redis), whatever the key's
# limits are when it is folded. Reservations are counted whenever the key has rate
# limits too (not only max_parallel or a budget), so that settled rows left by a policy
# edit are still counted and folded.
#
# An unsettled reservation still counts for nothing once expired, as before, but its
# row is kept for as long again (its hold, p_expires - p_now), so that a request that
# ends just after its reservation expired still records its spend on it (and one ending
# after that records it in the window's spend directly: db_store.settle_statements).
#
# Same parameters as before, plus p_fold_after, and the same columns returned.
OLD_SIGNATURE = (
    "limits_admit(uuid, double precision, double precision, timestamptz, bigint, numeric,"
    " bigint, bigint, bigint, bigint, numeric, boolean, boolean, boolean)"
)
NEW_SIGNATURE = OLD_SIGNATURE[:-1] + ", bigint)"

ADMIT_FUNCTION = """
CREATE FUNCTION limits_admit(
    p_limits uuid, p_now double precision, p_expires double precision,
    p_window timestamptz, p_tokens bigint, p_usd numeric,
    p_rpm bigint, p_tpm bigint, p_parallel bigint, p_budget_tokens bigint, p_budget_usd numeric,
    p_rates boolean, p_live boolean, p_spend boolean, p_fold_after bigint
) RETURNS TABLE (
    o_reservation bigint, o_admitted boolean, o_recent bigint, o_recent_tokens numeric,
    o_oldest bigint, o_in_flight bigint, o_reserved_tokens numeric, o_reserved_usd numeric,
    o_spent_tokens bigint, o_spent_usd numeric
) LANGUAGE plpgsql SET enable_bitmapscan = off AS $$
DECLARE
    v_first bigint := floor(p_now)::bigint - 60;  -- the oldest second that still counts
    v_forget double precision := p_now - (p_expires - p_now);  -- expired for a hold
    v_stale_seconds bigint;
    v_stale_reservations bigint;
    v_settled bigint;
BEGIN
    PERFORM 1 FROM limits_keylimits WHERE id = p_limits FOR NO KEY UPDATE;
    SELECT coalesce(s.recent, 0),
           coalesce(s.recent_tokens, 0) + coalesce(r.settled_second_tokens, 0),
           s.oldest, s.stale,
           r.in_flight, coalesce(r.reserved_tokens, 0), coalesce(r.reserved_usd, 0), r.stale,
           r.settled,
           coalesce(b.spent_tokens, 0) + coalesce(r.settled_tokens, 0),
           coalesce(b.spent_usd, 0) + coalesce(r.settled_usd, 0)
      INTO o_recent, o_recent_tokens, o_oldest, v_stale_seconds,
           o_in_flight, o_reserved_tokens, o_reserved_usd, v_stale_reservations, v_settled,
           o_spent_tokens, o_spent_usd
      FROM (SELECT sum(requests) FILTER (WHERE at_second >= v_first) AS recent,
                   sum(tokens) FILTER (WHERE at_second >= v_first) AS recent_tokens,
                   min(at_second) FILTER (WHERE at_second >= v_first) AS oldest,
                   count(*) FILTER (WHERE at_second < v_first) AS stale
              FROM limits_secondcount WHERE p_rates AND limits_id = p_limits) s,
           (SELECT count(*) FILTER (WHERE settled_tokens IS NULL AND expires_at > p_now)
                       AS in_flight,
                   sum(tokens) FILTER (WHERE settled_tokens IS NULL AND expires_at > p_now
                                         AND window_start = p_window) AS reserved_tokens,
                   sum(usd) FILTER (WHERE settled_tokens IS NULL AND expires_at > p_now
                                      AND window_start = p_window) AS reserved_usd,
                   count(*) FILTER (WHERE settled_tokens IS NULL AND expires_at <= v_forget)
                       AS stale,
                   count(settled_tokens) AS settled,
                   sum(settled_tokens) FILTER (WHERE budgeted AND window_start = p_window)
                       AS settled_tokens,
                   sum(settled_usd) FILTER (WHERE budgeted AND window_start = p_window)
                       AS settled_usd,
                   sum(settled_tokens - tokens) FILTER (WHERE at_second >= v_first)
                       AS settled_second_tokens
              FROM limits_reservation WHERE (p_live OR p_rates) AND limits_id = p_limits) r,
           (SELECT max(spent_tokens) AS spent_tokens, max(spent_usd) AS spent_usd
              FROM limits_spend
             WHERE p_spend AND limits_id = p_limits AND window_start = p_window) b;
    IF v_stale_seconds > 0 THEN
        DELETE FROM limits_secondcount WHERE limits_id = p_limits AND at_second < v_first;
    END IF;
    IF v_stale_reservations > 0 THEN
        DELETE FROM limits_reservation
         WHERE limits_id = p_limits AND settled_tokens IS NULL AND expires_at <= v_forget;
    END IF;
    IF v_settled >= p_fold_after THEN
        WITH folded AS (
            DELETE FROM limits_reservation
             WHERE limits_id = p_limits AND settled_tokens IS NOT NULL
            RETURNING window_start, at_second, tokens, budgeted, settled_tokens, settled_usd
        ), spent AS (
            INSERT INTO limits_spend (limits_id, window_start, spent_tokens, spent_usd)
            SELECT p_limits, window_start, sum(settled_tokens), coalesce(sum(settled_usd), 0)
              FROM folded WHERE budgeted GROUP BY window_start
            ON CONFLICT (limits_id, window_start) DO UPDATE
            SET spent_tokens = limits_spend.spent_tokens + EXCLUDED.spent_tokens,
                spent_usd = limits_spend.spent_usd + EXCLUDED.spent_usd
        )
        UPDATE limits_secondcount c SET tokens = c.tokens + d.tokens
          FROM (SELECT at_second, sum(settled_tokens - tokens) AS tokens FROM folded
                 WHERE at_second >= v_first GROUP BY at_second) d
         WHERE c.limits_id = p_limits AND c.at_second = d.at_second;
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
        INSERT INTO limits_reservation
            (limits_id, expires_at, window_start, tokens, usd, at_second, budgeted)
        SELECT p_limits, p_expires, p_window, p_tokens, p_usd,
               CASE WHEN p_rates THEN v_first + 60 END, p_spend
         WHERE p_live
        RETURNING id INTO o_reservation;
    END IF;
    RETURN NEXT;
END
$$;
"""


def admit_with_settled_reservations(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
        schema_editor.execute(ADMIT_FUNCTION)


def admit_in_three_statements(apps, schema_editor):
    # Back to migration 0004's function. Settled rows not folded yet would count as in
    # flight there: fold them first.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
        previous = importlib.import_module("limits.migrations.0004_admit_in_three_statements")
        schema_editor.execute(previous.ADMIT_FUNCTION)
    _fold_everything(apps)


def _fold_everything(apps):
    from django.db.models import Sum

    reservation = apps.get_model("limits", "Reservation")
    spend = apps.get_model("limits", "Spend")
    settled = reservation.objects.exclude(settled_tokens=None)
    totals = settled.filter(budgeted=True).values("limits_id", "window_start").annotate(
        tokens=Sum("settled_tokens"), usd=Sum("settled_usd")
    )
    for row in totals:
        window, _ = spend.objects.get_or_create(
            limits_id=row["limits_id"], window_start=row["window_start"]
        )
        window.spent_tokens += row["tokens"] or 0
        window.spent_usd += row["usd"] or 0
        window.save()
    settled.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("limits", "0004_admit_in_three_statements"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="at_second",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reservation",
            name="budgeted",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="reservation",
            name="settled_tokens",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reservation",
            name="settled_usd",
            field=models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True),
        ),
        migrations.RunPython(admit_with_settled_reservations, admit_in_three_statements),
    ]
