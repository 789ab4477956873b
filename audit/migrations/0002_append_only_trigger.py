"""Audit events are append-only in the database too (PostgreSQL): a trigger refuses UPDATE and
DELETE of a row, whoever sends it (the app, a raw SQL session, a script).

One change is let through: the actor becoming NULL when that user is deleted (the foreign
key's SET NULL, which Django sends as an UPDATE), with every other column unchanged;
actor_name keeps who acted. TRUNCATE is not a row change and stays possible for the table's
owner (the test suite's flush uses it); give the application a role that does not own the
table to take that away too (docs/security.md).

SQLite (the embedded setup) gets no trigger: the model and queryset refuse changes there,
and SQLite rebuilds a table (dropping its triggers) on many schema changes.
"""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % of audit event % refused', TG_OP, OLD.id;
END;
$$;
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_events")]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["actor_name", "created_at"], name="audit_actor"),
        ),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
