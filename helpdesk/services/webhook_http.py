"""The one HTTP POST a webhook delivery makes, safe against request forgery.

- Only ``http`` and ``https`` URLs with no user name or password in them.
- The host is resolved once and the connection goes to that address (pinned): a DNS answer that
  changes between the check and the connection (rebinding) cannot move it to another address.
  The TLS handshake still checks the certificate against the URL's host name.
- Addresses that are not global unicast (loopback, private, link-local such as the cloud
  metadata address 169.254.169.254, carrier-grade NAT, multicast, reserved, unspecified, and
  their IPv4-mapped IPv6 forms) are refused unless the URL's ``host`` or ``host:port`` is in
  ``WEBHOOK_ALLOWED_HOSTS`` (``HELPDESK_WEBHOOK_ALLOWED_HOSTS``, comma-separated).
- Redirects are never followed (a 3xx is a failed delivery), the connection and each read have
  timeouts, a whole attempt has a deadline, and at most ``max_bytes`` of the answer are read.

The standard library's ``http.client`` does this with no dependency; under ``helpdesk serve``'s
gevent its sockets are cooperative.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from helpdesk.i18n import _


class UnsafeUrl(Exception):
    """The URL may not be called (``str(err)`` is a translated, user-facing reason)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, lower-case, without IPv6 brackets
    port: int
    path: str  # path and query


@dataclass
class Answer:
    status: int | None
    body: bytes
    latency_ms: int
    error: str | None = None


def parse_url(url: str) -> Target:
    """The URL's parts, or :class:`UnsafeUrl` for one that can never be a webhook."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeUrl(_("This is not a valid URL.")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl(_("The URL must start with http:// or https:// and name a host."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(_("The URL must not contain a user name or password."))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme,
        host=parts.hostname.lower(),
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def allowed_hosts(setting: str | Iterable[str] | None) -> set[str]:
    """``WEBHOOK_ALLOWED_HOSTS`` as a set of ``host`` and ``host:port`` (lower-case, IPv6
    without brackets: ``::1`` or ``::1:8080`` written ``[::1]:8080``)."""
    if not setting:
        return set()
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    result: set[str] = set()
    for raw in items:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        if entry.startswith("["):
            host, _sep, rest = entry[1:].partition("]")
            result.add(f"{host}{rest}" if rest.startswith(":") else host)
        else:
            result.add(entry)
    return result


def _listed(target: Target, allowed: set[str]) -> bool:
    return target.host in allowed or f"{target.host}:{target.port}" in allowed


def is_public(address: str) -> bool:
    """A global unicast address (what a webhook may reach without being listed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(target: Target, allowed: set[str]) -> list[str]:
    """The addresses to connect to (in the resolver's order), if every address the host
    resolves to is public or the host is listed; else :class:`UnsafeUrl`."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(_("The host %(host)s cannot be found.", host=target.host)) from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(_("The host %(host)s cannot be found.", host=target.host))
    if not _listed(target, allowed) and not all(is_public(a) for a in addresses):
        # All of them, not just the first: a name with one public and one private address
        # would otherwise be a coin toss away from the private one.
        raise UnsafeUrl(
            _(
                "%(host)s is a private, loopback or link-local address; webhooks may not call it"
                " unless an administrator allows it (HELPDESK_WEBHOOK_ALLOWED_HOSTS).",
                host=target.host,
            )
        )
    return list(dict.fromkeys(addresses))


def check_url(url: str, allowed: set[str]) -> Target:
    """Refuse a URL that may not be called now (at registration; deliveries check again)."""
    target = parse_url(url)
    resolve(target, allowed)
    return target


def _connect(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of the checked addresses that answers (a name with IPv4 and
    IPv6 addresses may listen on one of them only)."""
    error: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allowed: set[str],
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    max_bytes: int = 64 * 1024,
) -> Answer:
    """POST ``body`` to ``url``; never raises: a refusal or a network error is ``Answer.error``."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = parse_url(url)
        addresses = resolve(target, allowed)
    except UnsafeUrl as exc:
        return Answer(None, b"", took(), str(exc))
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, addresses, connect_timeout)
    deadline = started + connect_timeout + read_timeout
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(read_timeout)
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size < max_bytes:
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took too long")
            chunk = response.read1(min(16384, max_bytes - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return Answer(response.status, b"".join(chunks), took())
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        reason = str(exc) or type(exc).__name__
        return Answer(None, b"", took(), f"{type(exc).__name__}: {reason}")
    finally:
        conn.close()
