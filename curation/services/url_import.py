"""Downloading images from a list of URLs without becoming an SSRF proxy.

Each URL is fetched by :func:`fetch_url`, which:

- accepts only ``http`` and ``https`` URLs with a host name, no credentials, and at most
  :data:`MAX_URL_LENGTH` characters;
- resolves the host name once, checks every address it resolves to against an
  *address policy* (the default refuses private, loopback, link-local, cloud-metadata,
  multicast, reserved and unspecified addresses: everything that is not globally
  routable), then connects to exactly that checked address, sending the original host
  in the ``Host`` header and as the TLS server name (SNI and certificate checks use the
  name). It never resolves the name a second time, so DNS that changes between check
  and connect (DNS rebinding) cannot redirect the connection;
- follows redirects itself, re-validating the scheme, the host and its addresses at
  every hop, up to ``max_redirects``;
- streams the body and stops at ``max_bytes``; a connect timeout and a total deadline
  bound the time; no proxy from the environment is used (a proxy would resolve names
  itself).

The policy and the resolver are parameters, so tests can allow exactly a local test
server on 127.0.0.1 while production refuses loopback.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

__all__ = [
    "MAX_URL_LENGTH",
    "FetchLimits",
    "UrlFetchError",
    "UrlFetcher",
    "default_address_policy",
    "fetch_url",
    "parse_url_list",
    "system_resolver",
    "validate_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], str | None]
"""Returns the reason an address is refused, or None when it may be contacted."""
Resolver = Callable[[str, int], list[str]]
"""Resolves (host, port) to IP address strings."""

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = {"http": 80, "https": 443}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
READ_BLOCK = 64 * 1024

CLOUD_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6 metadata
}


class UrlFetchError(ValueError):
    """A URL could not be (or must not be) fetched; ``reason`` is short and human."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 50 * 2**20
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    max_redirects: int = 5


def default_address_policy(address: IPAddress) -> str | None:
    """Refuse every address that is not globally routable unicast (the production policy)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            reason = default_address_policy(mapped)
            return f"{reason} (inside IPv6 {address})" if reason else None
    if address in CLOUD_METADATA:
        return f"cloud metadata address {address} refused"
    if address.is_loopback:
        return f"loopback address {address} refused"
    if address.is_link_local:
        return f"link-local address {address} refused"
    if address.is_multicast:
        return f"multicast address {address} refused"
    if address.is_unspecified:
        return f"unspecified address {address} refused"
    if address.is_private:
        return f"private address {address} refused"
    if address.is_reserved or not address.is_global:
        return f"reserved or non-global address {address} refused"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlFetchError(f"host {host!r} does not resolve: {exc.strerror or exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def validate_url(url: str) -> str | None:
    """The reason a URL is refused before any network access, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"URL longer than {MAX_URL_LENGTH} characters"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return "URL contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"malformed URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return f"scheme {scheme + ':' if scheme else '(none)'} not allowed (only http and https)"
    if not parts.hostname:
        return "URL has no host"
    if parts.username is not None or parts.password is not None:
        return "URLs with credentials are not allowed"
    if port == 0:
        return "malformed URL: port 0"
    return None


def parse_url_list(text: str) -> list[tuple[str, str | None]]:
    """Split a URL list (one per line; blank lines and ``#`` comments skipped).

    Returns (url, problem) pairs in order, duplicates dropped; problem is None for URLs
    that may be fetched.
    """
    seen: dict[str, str | None] = {}
    for raw in text.splitlines():
        url = raw.strip()
        if not url or url.startswith("#") or url in seen:
            continue
        seen[url] = validate_url(url)
    return list(seen.items())


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a fixed, already-checked IP; the Host header keeps the URL's name."""

    def __init__(self, host: str, port: int, *, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned_ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed, already-checked IP; SNI and certificate checks use the URL's name."""

    def __init__(
        self, host: str, port: int, *, ip: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned_ip = ip
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class FetchResult:
    data: bytes
    final_url: str
    hops: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UrlFetcher:
    """Everything :func:`fetch_url` needs; tests swap the policy and the resolver."""

    address_policy: AddressPolicy = default_address_policy
    resolver: Resolver = system_resolver
    limits: FetchLimits = FetchLimits()
    tls_context: ssl.SSLContext | None = None

    def fetch(self, url: str) -> FetchResult:
        return fetch_url(
            url,
            address_policy=self.address_policy,
            resolver=self.resolver,
            limits=self.limits,
            tls_context=self.tls_context,
        )


def _checked_addresses(
    host: str, port: int, *, resolver: Resolver, policy: AddressPolicy
) -> list[str]:
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    candidates: Iterable[str] = [str(literal)] if literal is not None else resolver(host, port)
    addresses = []
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError as exc:
            raise UrlFetchError(f"resolver returned a bad address {candidate!r}") from exc
        reason = policy(address)
        if reason:
            # One bad answer refuses the host: mixing a public and a private answer is
            # exactly how rebinding attacks hedge.
            raise UrlFetchError(f"{host}: {reason}")
        addresses.append(str(address))
    if not addresses:
        raise UrlFetchError(f"host {host!r} does not resolve")
    return addresses


def fetch_url(
    url: str,
    *,
    address_policy: AddressPolicy = default_address_policy,
    resolver: Resolver = system_resolver,
    limits: FetchLimits = FetchLimits(),
    tls_context: ssl.SSLContext | None = None,
) -> FetchResult:
    """Download one URL within the limits, refusing addresses the policy refuses.

    Raises:
        UrlFetchError: with a short ``reason`` (refused scheme or address, too many
            redirects, HTTP error status, too large, too slow, connection failure).
    """
    deadline = time.monotonic() + limits.total_timeout
    current = url
    hops: list[str] = []
    used_ips: list[str] = []
    for _ in range(limits.max_redirects + 1):
        problem = validate_url(current)
        if problem:
            raise UrlFetchError(problem if not hops else f"redirect to {current}: {problem}")
        hops.append(current)
        parts = urlsplit(current)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or ALLOWED_SCHEMES[scheme]
        ips = _checked_addresses(host, port, resolver=resolver, policy=address_policy)
        ip = ips[0]
        used_ips.append(ip)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlFetchError(f"timed out after {limits.total_timeout:g} s")
        timeout = min(limits.connect_timeout, remaining)
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _PinnedHTTPSConnection(
                host, port, ip=ip, timeout=timeout,
                context=tls_context or ssl.create_default_context(),
            )  # fmt: skip
        else:
            connection = _PinnedHTTPConnection(host, port, ip=ip, timeout=timeout)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        try:
            connection.request(
                "GET",
                path,
                headers={"User-Agent": "q16-curator/1", "Accept": "image/*", "Connection": "close"},
            )
            response = connection.getresponse()
            if response.status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                response.close()
                if not location:
                    raise UrlFetchError(f"HTTP {response.status} redirect without a Location")
                current = urljoin(current, location.strip())
                continue
            if response.status != 200:
                raise UrlFetchError(f"HTTP {response.status} {response.reason}".strip())
            declared = response.getheader("Content-Length")
            # isascii: str.isdigit() accepts "²", which int() refuses.
            if (
                declared
                and declared.isascii()
                and declared.isdigit()
                and int(declared) > limits.max_bytes
            ):
                raise UrlFetchError(
                    f"too large: {declared} bytes declared > limit {limits.max_bytes}"
                )
            data = _read_bounded(response, connection, limits=limits, deadline=deadline)
            return FetchResult(data=data, final_url=current, hops=hops, ips=used_ips)
        except UrlFetchError:
            raise
        except TimeoutError as exc:
            raise UrlFetchError(f"timed out: {exc}") from exc
        except ssl.SSLError as exc:
            raise UrlFetchError(f"TLS error: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise UrlFetchError(f"connection failed: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
    raise UrlFetchError(f"more than {limits.max_redirects} redirects")


def _read_bounded(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    *,
    limits: FetchLimits,
    deadline: float,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlFetchError(f"timed out after {limits.total_timeout:g} s")
        if connection.sock is not None:
            connection.sock.settimeout(min(limits.connect_timeout, remaining))
        block = (
            response.read1(READ_BLOCK) if hasattr(response, "read1") else response.read(READ_BLOCK)
        )
        if not block:
            break
        size += len(block)
        if size > limits.max_bytes:
            raise UrlFetchError(f"too large: more than {limits.max_bytes} bytes")
        chunks.append(block)
    return b"".join(chunks)
