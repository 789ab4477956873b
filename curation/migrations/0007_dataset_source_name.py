"""The uploaded archive's file name, shown instead of the stored copy's internal path."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0006_prompt_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="source_name",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
    ]
