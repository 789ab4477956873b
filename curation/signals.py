"""Revoking API tokens: a password change or a deactivation deletes the user's tokens.

Every way of changing a password (set_password + save, the Django admin password form, the
`changepassword` command, a password-change view, even a hash assigned directly) ends in the
user's save(): pre_save compares with the stored row, post_save deletes the tokens.

Django also re-hashes the *same* password on login when its hasher changed (more iterations
after an upgrade): that is not a change, and must not break the user's API clients. Telling
the two apart needs the raw password, which Django's login path drops before saving, so
`set_password` is wrapped to keep it on the instance until the save (as Django's own
`_password` does).
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.hashers import check_password

from curation.services.tokens import api_tokens_revoke

REVOKE_FLAG = "_q16_revoke_tokens"
RAW_PASSWORD = "_q16_raw_password"
WATCHED_FIELDS = {"password", "is_active"}


def remember_raw_password(user_model: Any) -> None:
    """Wrap user_model.set_password to keep the raw password until the next save."""
    original = user_model.set_password
    if getattr(original, "remembers_raw_password", False):
        return

    @functools.wraps(original)
    def set_password(self: Any, raw_password: str | None) -> None:
        original(self, raw_password)
        setattr(self, RAW_PASSWORD, raw_password)

    set_password.remembers_raw_password = True  # type: ignore[attr-defined]
    user_model.set_password = set_password


def _password_changed(instance: Any, stored_hash: str) -> bool:
    if instance.password == stored_hash:
        return False
    raw = getattr(instance, RAW_PASSWORD, None)
    # The same password re-hashed (a login with an outdated hasher) is not a change.
    return raw is None or not check_password(raw, stored_hash)


def user_pre_save(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    setattr(instance, REVOKE_FLAG, False)
    if raw or instance.pk is None:
        return
    if update_fields is not None and not WATCHED_FIELDS & set(update_fields):
        return  # e.g. last_login on every login
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    revoke = not instance.is_active or _password_changed(instance, stored["password"])
    setattr(instance, REVOKE_FLAG, revoke)


def user_post_save(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if getattr(instance, REVOKE_FLAG, False):
        reason = "account deactivated" if not instance.is_active else "password changed"
        api_tokens_revoke(user=instance, reason=reason)
    setattr(instance, REVOKE_FLAG, False)
    if update_fields is None or "password" in update_fields:
        setattr(instance, RAW_PASSWORD, None)  # saved: forget it, as Django does _password
