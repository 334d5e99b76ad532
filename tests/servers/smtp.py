"""An SMTP sink (aiosmtpd) that records what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.servers._base import (
    HOST,
    START_TIMEOUT,
    _Server,
)

# ------------------------------------------------------------------------------ SMTP


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as received after DATA (CRLF line ends, dots unstuffed)
    auth_login: str | None  # the AUTH user name, or None


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = None
        if session.authenticated and session.auth_data is not None:
            raw = getattr(session.auth_data, "login", None)
            login = raw.decode() if isinstance(raw, bytes) else raw
        content = envelope.original_content or envelope.content or b""
        self.sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(content),
                auth_login=login,
            )
        )
        return "250 2.0.0 Message accepted"


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(100)
    except BaseException:
        sock.close()
        raise
    return sock


@functools.cache
def _socket_controller_class() -> type[Any]:
    """Built on first use, so importing this module does not need aiosmtpd."""
    from aiosmtpd.controller import Controller

    class SocketController(Controller):
        """aiosmtpd's Controller serving on a socket we bound (and so know is ours)."""

        def __init__(self, sock: socket.socket, handler: Any, **kwargs: Any) -> None:
            self._sock = sock
            super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kwargs)

        def _create_server(self) -> Any:
            return self.loop.create_server(
                self._factory_invoker, sock=self._sock, ssl=self.ssl_context
            )

    return SocketController


class _XOAuth2SinkHandler(_SinkHandler):
    """The sink with SMTP ``AUTH XOAUTH2``, tokens checked by the sink's ``oauth2_check``."""

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        blob = args[1].encode() if len(args) > 1 else await server.challenge_auth("")
        parsed = _parse_xoauth2(blob) if isinstance(blob, bytes) else None
        check = self.sink.oauth2_check
        if parsed is not None and check is not None and check(*parsed):
            return AuthResult(success=True, auth_data=LoginPassword(parsed[0].encode(), b""))
        # Google's exchange: an error JSON as a challenge, the client's empty answer, then 535.
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


def _parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """(user, token) of a base64 XOAUTH2 initial response, ``None`` if malformed."""
    import base64
    import binascii

    try:
        text = base64.b64decode(blob, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    if not fields.get("user") or not auth.startswith("Bearer "):
        return None
    return fields["user"], auth.removeprefix("Bearer ")


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation notice of its own on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


_AIOSMTPD_FILTER = _DropLoginDataNotice()


class SmtpSink(_Server):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it gets.

    ``auth=(user, password)`` makes it advertise AUTH PLAIN/LOGIN without TLS and
    refuse MAIL FROM before a successful login; ``oauth2_check(user, token) -> bool`` adds
    AUTH XOAUTH2 (and requires a login too).
    """

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        oauth2_check: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.auth = auth
        self.oauth2_check = oauth2_check
        if oauth2_check is not None and auth is None:
            self.auth = ("", "\0")  # no password login can match: XOAUTH2 only
        logging.getLogger("mail.log").addFilter(_AIOSMTPD_FILTER)  # idempotent
        self.host = HOST
        self.port = 0
        self.startup_seconds = 0.0
        self._controller: Any = None
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def _authenticator(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.auth[0].encode()
            and auth_data.password == self.auth[1].encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> None:
        """Start listening (on the same port as before, after a :meth:`stop`)."""
        if self._controller is not None:
            return
        began = time.monotonic()
        self._register()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                sock = _listen(self.port)  # port 0 on the first start: no race
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # our old port, still held by someone: retry
        try:
            self._start_on(sock)
        except BaseException:
            sock.close()
            raise
        self.startup_seconds = time.monotonic() - began

    def _start_on(self, sock: socket.socket) -> None:
        kwargs: dict[str, Any] = {}
        if self.auth is not None:
            kwargs.update(authenticator=self._authenticator, auth_require_tls=False)
        handler = _SinkHandler(self) if self.oauth2_check is None else _XOAuth2SinkHandler(self)
        controller = _socket_controller_class()(
            sock,
            handler,
            loop=asyncio.new_event_loop(),
            server_hostname="smtp-sink.test",  # no getfqdn() DNS lookup
            ready_timeout=START_TIMEOUT,
            **kwargs,
        )
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            if not controller.loop.is_closed():
                controller.loop.close()
            raise
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        """Stop listening and drop open connections; received messages are kept."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()  # cancels the sessions' tasks, closes the listener

    def close(self) -> None:
        self.stop()
        self._unregister()

    # -- received messages

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived (since :meth:`clear`)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"SMTP sink got {len(self._messages)} message(s), expected {count} "
                    f"within {timeout}s"
                )
            return list(self._messages)
