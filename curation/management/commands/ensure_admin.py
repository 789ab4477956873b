"""Create the first superuser if there is none (run by `make run` on every start).

The username, email and password come from Q16_ADMIN_USERNAME (default "admin"),
Q16_ADMIN_EMAIL (default empty) and Q16_ADMIN_PASSWORD; without a password one is
generated and printed once, on the run that creates the account.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Create a superuser from Q16_ADMIN_* unless one exists; print the credentials once."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        manager = user_model._default_manager
        existing = manager.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"Admin account exists: {existing.get_username()}")
            return

        username = os.environ.get("Q16_ADMIN_USERNAME", "").strip() or "admin"
        email = os.environ.get("Q16_ADMIN_EMAIL", "").strip()
        password = os.environ.get("Q16_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)

        if manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            raise CommandError(
                f"A user named {username!r} exists but is not a superuser. Promote it with "
                "`manage.py shell` or the admin, or set Q16_ADMIN_USERNAME to another name."
            )
        with transaction.atomic():
            manager.create_superuser(
                **{user_model.USERNAME_FIELD: username}, email=email, password=password
            )

        if generated:
            self.stdout.write(f"Admin account created: username={username} password={password}")
        else:
            self.stdout.write(
                f"Admin account created: username={username} (password from Q16_ADMIN_PASSWORD)"
            )
