"""A throwaway Django environment for the benchmarks: SQLite database in var/bench."""

from __future__ import annotations

import os
from pathlib import Path


def setup(work_dir: Path, *, fresh: bool) -> None:
    """Point Django at var/bench (database, data dir), set it up and migrate.

    Must run before anything imports the Django apps. ``fresh`` deletes the database first.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    db = work_dir / "bench.sqlite3"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ["Q16_DATA_DIR"] = str(work_dir / "data")
    # The benchmark images live under work_dir/images (bench/run.py); the data dir is refused.
    os.environ["Q16_IMPORT_ROOTS"] = str(work_dir / "images")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    # Also when reusing the database: the code may have gained migrations since.
    call_command("migrate", verbosity=0, interactive=False)
