"""The settings mypy's Django plugin loads ([tool.django-stubs] in pyproject.toml).

config.settings refuses to load without SECRET_KEY when DEBUG is off; the plugin imports the
settings, so a bare `mypy` on a fresh checkout would fail. This module gives it a placeholder
key and is otherwise config.settings itself. Never run the app with it.
"""

import os

os.environ.setdefault("SECRET_KEY", "typecheck-only-not-a-secret")

from config.settings import *  # noqa: E402, F403
