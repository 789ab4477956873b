"""Which worker took each scoring chunk, when, and how many images it processed."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0007_dataset_source_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="scoringchunk",
            name="worker",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="scoringchunk",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="scoringchunk",
            name="processed",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
