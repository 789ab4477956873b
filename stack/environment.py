"""The environment the Django settings read, prepared before anything imports Django.

The data directory (Q16_DATA_DIR, private: 0700, files 0600, umask 077), a SECRET_KEY
generated once into it, the imports folder, DJANGO_SETTINGS_MODULE. Children inherit
os.environ.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from stack.reporting import StackError, log

REPO = Path(__file__).resolve().parent.parent


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise StackError(f"{name} must be a number, not {raw!r}") from None


def data_dir() -> Path:
    raw = os.environ.get("Q16_DATA_DIR") or str(REPO / "var")
    path = Path(raw).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StackError(f"cannot create the data directory {path}: {exc.strerror}") from None
    return path


def secret_key(data: Path) -> str:
    """The SECRET_KEY from the environment, else one generated once into <data>/secret_key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data / "secret_key"
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    tmp = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.replace(tmp, path)
    log(f"generated a SECRET_KEY in {path}")
    return key


def restrict_permissions(data: Path) -> None:
    """Make the data directory private: umask 077 for what this process and its children
    create, 0700 on the directory, 0600 on the files already in it (db, logs, ...).

    Changes the umask of the calling process: call it from the stack's own process only.
    """
    os.umask(0o077)
    try:
        data.chmod(0o700)
    except OSError as exc:
        log(f"cannot make the data directory {data} private (chmod 700): {exc.strerror}")
    for entry in data.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_symlink():
                continue
            if entry.is_file():
                entry.chmod(0o600)


def imports_folder(data: Path) -> Path:
    """<data>/imports, the default Q16_IMPORT_ROOTS: server folders to import from."""
    folder = data / "imports"
    folder.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    return folder


def imports_line(data: Path) -> str:
    """The startup banner's line about where datasets can be imported from."""
    configured = os.environ.get("Q16_IMPORT_ROOTS")
    if configured:
        return f"Imports folders (Q16_IMPORT_ROOTS): {configured}"
    return (
        f"Imports folder: {data / 'imports'} (put dataset folders here; "
        "set Q16_IMPORT_ROOTS to allow others)"
    )


def prepare_environment() -> Path:
    """Set what the settings read; children inherit os.environ. Returns the data dir."""
    data = data_dir()
    restrict_permissions(data)
    os.environ["Q16_DATA_DIR"] = str(data)
    os.environ["SECRET_KEY"] = secret_key(data)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # DATABASE_URL stays unset unless the user set it: settings then use <data>/db.sqlite3.
    if not os.environ.get("MEDIA_ROOT"):
        (data / "media").mkdir(exist_ok=True)
    # STATIC_ROOT: whitenoise warns when it is missing, even though it serves from the apps.
    (data / "staticfiles").mkdir(exist_ok=True)
    imports_folder(data)
    return data
