# The (run, image) unique index serves every lookup by run: drop the run-only index.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0003_url_list_import"),
    ]

    operations = [
        migrations.AlterField(
            model_name="score",
            name="run",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="scores",
                to="curation.scoringrun",
            ),
        ),
    ]
