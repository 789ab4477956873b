"""Per-dataset audit share: the part of the score and uncertain queues that is audit items.

Existing datasets keep 0 (audit items only through the audit mode, as before).
"""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    # After the other 0004 in the tree (one leaf); renumbered at integration.
    dependencies = [("reviewer", "0004_bulk_actions")]

    operations = [
        migrations.AddField(
            model_name="reviewsettings",
            name="audit_share",
            field=models.FloatField(
                default=0.0,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(0.5),
                ],
            ),
        ),
    ]
