"""The prompt policy (auto-retrain counters, pinned version) moves to curation.PromptPolicy."""

from django.db import migrations

POLICY_FIELDS = (
    "auto_retrain_every",
    "verdicts_since_retrain",
    "last_retrain_job_id",
    "pinned_version_id",
)


def copy_to_curation(apps, schema_editor):
    ReviewSettings = apps.get_model("reviewer", "ReviewSettings")
    PromptPolicy = apps.get_model("curation", "PromptPolicy")
    policies = [
        PromptPolicy(dataset_id=rules.dataset_id, **{f: getattr(rules, f) for f in POLICY_FIELDS})
        for rules in ReviewSettings.objects.exclude(
            auto_retrain_every=None,
            verdicts_since_retrain=0,
            last_retrain_job=None,
            pinned_version=None,
        ).iterator(chunk_size=2000)
    ]
    PromptPolicy.objects.bulk_create(policies, batch_size=2000)


def copy_back(apps, schema_editor):
    ReviewSettings = apps.get_model("reviewer", "ReviewSettings")
    PromptPolicy = apps.get_model("curation", "PromptPolicy")
    for policy in PromptPolicy.objects.iterator(chunk_size=2000):
        rules, _ = ReviewSettings.objects.get_or_create(dataset_id=policy.dataset_id)
        for field in POLICY_FIELDS:
            setattr(rules, field, getattr(policy, field))
        rules.save(update_fields=[f.removesuffix("_id") for f in POLICY_FIELDS])


class Migration(migrations.Migration):
    dependencies = [
        ("reviewer", "0002_review_experience"),
        ("curation", "0006_prompt_policy"),
    ]

    operations = [
        migrations.RunPython(copy_to_curation, copy_back),
        migrations.RemoveField(model_name="reviewsettings", name="auto_retrain_every"),
        migrations.RemoveField(model_name="reviewsettings", name="last_retrain_job"),
        migrations.RemoveField(model_name="reviewsettings", name="pinned_version"),
        migrations.RemoveField(model_name="reviewsettings", name="verdicts_since_retrain"),
    ]
