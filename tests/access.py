"""Test helpers for dataset access: assign reviewers explicitly, or (for tests about queue
mechanics rather than access) assign every reviewer to every dataset created in the test.

The rule itself (a reviewer sees only assigned datasets) is never relaxed; tests/security
checks it with unassigned reviewers.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db.models.signals import post_save

from curation.models import Dataset, DatasetAssignment


def assign(user, *datasets) -> None:
    """Let this reviewer review these datasets."""
    for dataset in datasets:
        DatasetAssignment.objects.get_or_create(user=user, dataset=dataset)


@pytest.fixture
def reviewers_assigned_everywhere():
    """Every non-staff user created during the test reviews every dataset created during it."""
    user_model = get_user_model()

    def on_dataset(sender, instance, created, raw=False, **kwargs):
        if created and not raw:
            for user in user_model.objects.filter(is_staff=False):
                assign(user, instance)

    def on_user(sender, instance, created, raw=False, **kwargs):
        if created and not raw and not instance.is_staff:
            assign(instance, *Dataset.objects.all())

    post_save.connect(on_dataset, sender=Dataset, weak=False, dispatch_uid="test-assign-ds")
    post_save.connect(on_user, sender=user_model, weak=False, dispatch_uid="test-assign-user")
    try:
        yield assign
    finally:
        post_save.disconnect(sender=Dataset, dispatch_uid="test-assign-ds")
        post_save.disconnect(sender=user_model, dispatch_uid="test-assign-user")
