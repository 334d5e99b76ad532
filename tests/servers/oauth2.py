"""A minimal OAuth2 token endpoint for XOAUTH2 tests."""

from __future__ import annotations

import threading
from typing import Any

from tests.servers._base import (
    HOST,
    STOP_TIMEOUT,
    _Server,
)

# --------------------------------------------------------------------- OAuth2 provider


class OAuth2Provider(_Server):
    """A tiny OAuth2 authorization server on 127.0.0.1 (stdlib ``http.server``, a real socket).

    * ``POST /token``: the refresh-token grant (RFC 6749 §6) for registered clients; issues
      access tokens valid ``expires_in`` seconds; ``rotate`` issues a new refresh token each time.
    * ``POST /introspect``: RFC 7662 token introspection, what Dovecot's oauth2 passdb asks.

    :meth:`check` answers the same question for the SMTP sink's XOAUTH2.
    """

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.clients: dict[str, str] = {}  # client id -> secret
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client, user)
        self.access_tokens: dict[str, str] = {}  # access token -> user
        self.token_requests = 0
        self.expires_in = 3600
        self.rotate = False

    @property
    def token_url(self) -> str:
        return f"http://{HOST}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{HOST}:{self.port}/introspect"

    def register(self, user: str) -> tuple[str, str, str]:
        """A new client allowed to act for ``user``: (client id, client secret, refresh token)."""
        import secrets as _secrets

        client_id = f"client-{_secrets.token_hex(4)}"
        secret = _secrets.token_urlsafe(16)
        refresh = _secrets.token_urlsafe(24)
        with self._lock:
            self.clients[client_id] = secret
            self.refresh_tokens[refresh] = (client_id, user)
        return client_id, secret, refresh

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def check(self, user: str, token: str) -> bool:
        with self._lock:
            return self.access_tokens.get(token) == user

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import secrets as _secrets

        with self._lock:
            self.token_requests += 1
            client_id = form.get("client_id", "")
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if self.clients.get(client_id) != form.get("client_secret"):
                return 401, {"error": "invalid_client"}
            owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if owner is None or owner[0] != client_id:
                return 400, {"error": "invalid_grant", "error_description": "token revoked"}
            access = _secrets.token_urlsafe(24)
            self.access_tokens[access] = owner[1]
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
            if self.rotate:
                fresh = _secrets.token_urlsafe(24)
                self.refresh_tokens[fresh] = owner
                body["refresh_token"] = fresh
            return 200, body

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            user = self.access_tokens.get(form.get("token", ""))
        if user is None:
            return 200, {"active": "false"}
        return 200, {"active": "true", "username": user}

    def start(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl

        if self._server is not None:
            return
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                routes = {"/token": provider._token, "/introspect": provider._introspect}
                route = routes.get(self.path.split("?")[0])
                status, body = route(form) if route else (404, {"error": "not_found"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the suite's output is for failures

        self._register()
        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth2-provider", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)
        self._unregister()
