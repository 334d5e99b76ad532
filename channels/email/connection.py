"""The admin's "Test connection": log in to IMAP and SMTP with entered settings, store nothing.

Each failure is told in the admin's language by its cause (the server refused the sign-in, the
server cannot be reached, TLS failed, the folder does not exist, the OAuth2 token endpoint
refused); the server's own words follow for the details. No password or token is ever part of
a message or a log line.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from imapclient.exceptions import IMAPClientError, LoginError

from channels.email import oauth2
from channels.email.accounts import OAuth2Config, ServerConfig, check_oauth2, check_server
from channels.email.imap import ImapSettings, _close, connect
from helpdesk.i18n import _

_TIMEOUT = 15.0


@dataclass
class CheckResult:
    """One line of a connection test: which side, whether it worked, what to tell the admin."""

    side: str  # "IMAP", "SMTP", "OAuth2"
    ok: bool
    message: str


def check_connection(
    imap: ServerConfig, smtp: ServerConfig | None, oauth2_config: OAuth2Config | None
) -> list[CheckResult]:
    """Log in to IMAP (and SMTP) with unsaved settings; nothing is stored or logged. Settings
    an admin could not save are refused first, with the same messages as saving."""
    check_server("IMAP", imap)
    if smtp is not None:
        check_server("SMTP", smtp)
    if oauth2_config is not None:
        check_oauth2(oauth2_config, {})
    # One token source for both sides: the second login reuses the first one's token.
    source = oauth2.TokenSource(oauth2_config, shared=False) if oauth2_config else None
    results = [_check_imap(imap, source)]
    if smtp is not None:
        results.append(_check_smtp(smtp, source))
    return results


def _needs_oauth2(source: oauth2.TokenSource | None) -> CheckResult | None:
    if source is None:
        return CheckResult(
            "OAuth2",
            False,
            _("OAuth2 sign-in needs a token endpoint, a client ID and a refresh token."),
        )
    return None


def _check_imap(cfg: ServerConfig, source: oauth2.TokenSource | None) -> CheckResult:
    if cfg.auth == "oauth2" and (missing := _needs_oauth2(source)) is not None:
        return missing
    settings = ImapSettings(
        host=cfg.host,
        port=int(cfg.port),
        user=cfg.user or "",
        password=cfg.password,
        oauth2_token=cfg.oauth2_token,
        security=cfg.security,
        folder=cfg.folder or "INBOX",
        timeout=_TIMEOUT,
        oauth2=source if cfg.auth == "oauth2" else None,
    )
    try:
        client = connect(settings)
    except oauth2.OAuth2Error as exc:
        return CheckResult("IMAP", False, _oauth2_failed(exc))
    except LoginError as exc:
        return CheckResult("IMAP", False, _auth_failed(exc))
    except ssl.SSLError as exc:
        return CheckResult("IMAP", False, _tls_failed(exc))
    except (OSError, IMAPClientError) as exc:
        return CheckResult("IMAP", False, _cannot_connect(cfg, exc))
    try:
        try:
            info = client.select_folder(settings.folder, readonly=True)
        except IMAPClientError:
            return CheckResult(
                "IMAP",
                False,
                _("Signed in, but the folder %(folder)s does not exist.", folder=settings.folder),
            )
        count = int(info.get(b"EXISTS", 0))
        idle = client.has_capability("IDLE")
    except (OSError, IMAPClientError) as exc:
        return CheckResult("IMAP", False, _cannot_connect(cfg, exc))
    finally:
        _close(client)
    message = _(
        "Signed in; the folder %(folder)s holds %(count)d messages.",
        folder=settings.folder,
        count=count,
    )
    if not idle:
        message += " " + _("The server has no IDLE: new mail is checked for periodically.")
    return CheckResult("IMAP", True, message)


def _check_smtp(cfg: ServerConfig, source: oauth2.TokenSource | None) -> CheckResult:
    if cfg.auth == "oauth2" and cfg.user and (missing := _needs_oauth2(source)) is not None:
        return missing
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if cfg.security == "ssl":
            client = smtplib.SMTP_SSL(cfg.host, int(cfg.port), timeout=_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(cfg.host, int(cfg.port), timeout=_TIMEOUT)
        with client:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if cfg.user and cfg.auth == "oauth2" and source is not None:
                oauth2.smtp_login(client, cfg.user, source)
            elif cfg.user:
                client.login(cfg.user, cfg.password or "")
            client.noop()
    except oauth2.OAuth2Error as exc:
        return CheckResult("SMTP", False, _oauth2_failed(exc))
    except smtplib.SMTPAuthenticationError as exc:
        return CheckResult("SMTP", False, _auth_failed(exc))
    except smtplib.SMTPNotSupportedError as exc:
        return CheckResult(
            "SMTP", False, _("The server does not offer this: %(detail)s", detail=str(exc))
        )
    except ssl.SSLError as exc:
        return CheckResult("SMTP", False, _tls_failed(exc))
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult("SMTP", False, _cannot_connect(cfg, exc))
    if cfg.user:
        return CheckResult("SMTP", True, _("Connected and signed in."))
    return CheckResult("SMTP", True, _("Connected (no sign-in configured)."))


def _detail(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {text}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return _("no answer in time")
    return str(exc) or type(exc).__name__


def _auth_failed(exc: BaseException) -> str:
    return _("Sign-in failed: check the user name and password (%(detail)s).", detail=_detail(exc))


def _tls_failed(exc: BaseException) -> str:
    return _(
        "TLS error: check the security setting, the port or the certificate (%(detail)s).",
        detail=_detail(exc),
    )


def _cannot_connect(cfg: ServerConfig, exc: BaseException) -> str:
    return _(
        "Cannot connect to %(host)s port %(port)s (%(detail)s).",
        host=cfg.host,
        port=cfg.port,
        detail=_detail(exc),
    )


def _oauth2_failed(exc: oauth2.OAuth2Error) -> str:
    return _("OAuth2 sign-in failed: %(detail)s.", detail=str(exc))
