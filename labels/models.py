"""The dataset report's answer to Question 16, as an admin edited and published it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from curation.models import Dataset


class DatasetReport(models.Model):
    """One per dataset, created on the first save: the pages generate the answer from the
    figures until an admin saves their own text."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="report")
    answer_text = models.TextField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    is_published = models.BooleanField(default=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"report of {self.dataset}"
