from __future__ import annotations

import pytest

from tests.exports.world import World, make_world


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("second-looker", password="pw-second-looker")


@pytest.fixture
def world(db, settings, tmp_path, admin_user, other_user) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return make_world(admin_user, other_user)
