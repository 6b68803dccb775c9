"""PostgreSQL triggers that make the database itself refuse what the app never does.

The Python code already refuses these writes (``AuditEntry.save``/``delete`` and its queryset,
the plan services' status checks); the triggers make the same promise hold for anyone with a
database connection: a script, a shell, a future bug. On SQLite (development) they are not
installed; the Python guards stand alone there.

Registered from ``PlannerConfig.ready`` so that ``makemigrations`` writes them into a migration.

- The audit trail is append-only: UPDATE and DELETE on it fail.
- A consented or performed plan is frozen: it cannot be deleted, and an UPDATE may only move a
  consented plan to performed or cancelled (the app's own transitions), bumping ``version`` and
  ``updated_at`` on the way; every other column must stay as it is.
- The injections and warning acknowledgements of a consented or performed plan cannot be
  inserted, changed or deleted (nor moved onto or off such a plan).
"""

import pgtrigger

from .models import AuditEntry, PlannedInjection, TreatmentPlan, WarningAcknowledgement

FROZEN_STATUSES = "('consented', 'performed')"

audit_append_only = pgtrigger.Protect(
    name="audit_append_only",
    operation=pgtrigger.Update | pgtrigger.Delete,
)

# Compares the whole row minus the columns a transition may touch, so a column added to the
# plan later is covered without touching this trigger.
consented_plan_frozen = pgtrigger.Trigger(
    name="consented_plan_frozen",
    when=pgtrigger.Before,
    operation=pgtrigger.Update | pgtrigger.Delete,
    condition=pgtrigger.Condition(f"OLD.status IN {FROZEN_STATUSES}"),
    func="""
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'nanofat: plan % is %, it cannot be deleted', OLD.id, OLD.status;
        END IF;
        IF (to_jsonb(NEW) - 'status' - 'version' - 'updated_at')
               IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'version' - 'updated_at')
           OR NEW.version < OLD.version
           OR NOT (
               NEW.status = OLD.status
               OR (OLD.status = 'consented' AND NEW.status IN ('performed', 'cancelled'))
           )
        THEN
            RAISE EXCEPTION 'nanofat: plan % is %, only its status may move on', OLD.id, OLD.status;
        END IF;
        RETURN NEW;
    """,
)


# The plan table and the frozen statuses are written out: a trigger body is SQL, not a template.
CHILDREN_FROZEN_SQL = """
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (
        SELECT 1 FROM planner_treatmentplan
        WHERE id = OLD.plan_id AND status IN ('consented', 'performed')
    ) THEN
        RAISE EXCEPTION 'nanofat: plan % is consented or performed, % refused on %',
            OLD.plan_id, TG_OP, TG_TABLE_NAME;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM planner_treatmentplan
        WHERE id = NEW.plan_id AND status IN ('consented', 'performed')
    ) THEN
        RAISE EXCEPTION 'nanofat: plan % is consented or performed, % refused on %',
            NEW.plan_id, TG_OP, TG_TABLE_NAME;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
"""


def _children_frozen(name: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        func=CHILDREN_FROZEN_SQL,
    )


pgtrigger.register(audit_append_only)(AuditEntry)
pgtrigger.register(consented_plan_frozen)(TreatmentPlan)
pgtrigger.register(_children_frozen("consented_injections_frozen"))(PlannedInjection)
pgtrigger.register(_children_frozen("consented_acks_frozen"))(WarningAcknowledgement)
