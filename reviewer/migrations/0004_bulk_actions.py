"""Second looks and bulk actions on decisions: `is_second_look` marks a reviewer's verdict on an
item that was already decided; `bulk_action` groups the decisions of one bulk verdict, so that
undo retracts them together. Existing decisions are single actions and first looks."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviewer", "0003_prompt_policy_moves_to_curation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="decision",
            name="bulk_action",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="decision",
            name="is_second_look",
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                condition=models.Q(("bulk_action__isnull", False)),
                fields=["reviewer", "bulk_action"],
                name="decision_bulk_action",
            ),
        ),
    ]
