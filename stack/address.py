"""Where the web server listens (Q16_HOST, Q16_PORT), the URL shown for it, and the
checks before and after it starts: the port is free, then the port answers."""

from __future__ import annotations

import os
import socket

from stack.reporting import StackError, log


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


def hint_allowed_hosts(host: str) -> None:
    if host not in {"127.0.0.1", "localhost", "::1"} and not os.environ.get("ALLOWED_HOSTS"):
        log(
            f"Q16_HOST={host}: set ALLOWED_HOSTS to the names clients use "
            "(the default only allows 127.0.0.1, localhost and [::1])"
        )
