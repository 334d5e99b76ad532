"""The admin's mailbox form: every field of ``helpdesk channel add-email``, OAuth2 included.

Secrets (passwords, client secret, refresh token) are write-only: an edit form never shows the
stored ones (a blank field keeps them), but a form sent back with an error or after "Test
connection" keeps what the admin just typed, so nothing typed is lost (those responses are
``no-store``). The form only shapes input; the service validates and stores it.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import PasswordInput

from channels.email.accounts import OAuth2Config, ServerConfig
from helpdesk.i18n import _l
from helpdesk.models import Channel
from helpdesk.web.forms import choices

_SECURITY = [
    ("ssl", _l("SSL/TLS")),
    ("starttls", _l("STARTTLS")),
    ("none", _l("None (trusted network only)")),
]
_AUTH = [("password", _l("Password")), ("oauth2", _l("OAuth2 (XOAUTH2)"))]
_PORT = [Optional(), NumberRange(1, 65535, message=_l("A port is between 1 and 65535."))]


def _secret(label: Any) -> PasswordField:
    # hide_value=False: only ever filled with what was typed in this very request.
    return PasswordField(
        label, validators=[Length(max=4096)], widget=PasswordInput(hide_value=False)
    )


class MailboxForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    address = EmailField(_l("Support address"), validators=[DataRequired(), Length(max=320)])
    team = SelectField(_l("Team for new tickets"), choices=[], validators=[Optional()])
    acknowledge = BooleanField(_l("Acknowledge each new ticket by mail"))
    active = BooleanField(_l("Active (fetch mail from this mailbox)"), default=True)

    imap_host = StringField(_l("IMAP server"), validators=[DataRequired(), Length(max=255)])
    imap_port = IntegerField(_l("IMAP port"), validators=_PORT)
    imap_security = SelectField(_l("IMAP security"), choices=choices(_SECURITY), default="ssl")
    imap_auth = SelectField(_l("IMAP sign-in"), choices=choices(_AUTH), default="password")
    imap_user = StringField(_l("IMAP user name"), validators=[DataRequired(), Length(max=320)])
    imap_password = _secret(_l("IMAP password"))
    imap_folder = StringField(
        _l("Folder to fetch"), default="INBOX", validators=[Optional(), Length(max=255)]
    )
    imap_move_to = StringField(
        _l("Move fetched mail to (else it is marked read)"),
        validators=[Optional(), Length(max=255)],
    )

    smtp_host = StringField(_l("SMTP server"), validators=[Optional(), Length(max=255)])
    smtp_port = IntegerField(_l("SMTP port"), validators=_PORT)
    smtp_security = SelectField(_l("SMTP security"), choices=choices(_SECURITY), default="starttls")
    smtp_auth = SelectField(_l("SMTP sign-in"), choices=choices(_AUTH), default="password")
    smtp_user = StringField(_l("SMTP user name"), validators=[Optional(), Length(max=320)])
    smtp_password = _secret(_l("SMTP password"))

    oauth2_token_url = StringField(
        _l("OAuth2 token endpoint"), validators=[Optional(), Length(max=2000)]
    )
    oauth2_client_id = StringField(_l("OAuth2 client ID"), validators=[Optional(), Length(max=500)])
    oauth2_client_secret = _secret(_l("OAuth2 client secret"))
    oauth2_refresh_token = _secret(_l("OAuth2 refresh token"))
    oauth2_scope = StringField(_l("OAuth2 scope"), validators=[Optional(), Length(max=2000)])

    def set_teams(self, teams: list[tuple[int, str]]) -> None:
        self.team.choices = choices([("", "—"), *((str(i), n) for i, n in teams)])

    def fill_from(self, channel: Channel) -> None:
        """Show a stored channel (secrets stay blank: a blank field keeps the stored one)."""
        settings = channel.settings or {}
        imap = settings.get("imap") or {}
        smtp = settings.get("smtp") or {}
        oauth2 = settings.get("oauth2") or {}
        self.process(
            data={
                "name": channel.name,
                "address": channel.address,
                "team": str(channel.team_id) if channel.team_id else "",
                "acknowledge": bool(settings.get("acknowledge")),
                "active": channel.active,
                "imap_host": imap.get("host"),
                "imap_port": imap.get("port"),
                "imap_security": imap.get("security") or "none",
                "imap_auth": imap.get("auth") or "password",
                "imap_user": imap.get("user"),
                "imap_folder": imap.get("folder") or "INBOX",
                "imap_move_to": imap.get("move_to"),
                "smtp_host": smtp.get("host"),
                "smtp_port": smtp.get("port"),
                "smtp_security": smtp.get("security") or "starttls",
                "smtp_auth": smtp.get("auth") or "password",
                "smtp_user": smtp.get("user"),
                "oauth2_token_url": oauth2.get("token_url"),
                "oauth2_client_id": oauth2.get("client_id"),
                "oauth2_scope": oauth2.get("scope"),
            }
        )

    def configs(self) -> tuple[ServerConfig, ServerConfig | None, OAuth2Config | None]:
        """What the admin entered, as the service's shapes (default ports by security)."""
        imap_security = self.imap_security.data or "ssl"
        imap = ServerConfig(
            host=(self.imap_host.data or "").strip(),
            port=self.imap_port.data or (993 if imap_security == "ssl" else 143),
            user=(self.imap_user.data or "").strip() or None,
            password=self.imap_password.data or None,
            security=imap_security,
            folder=(self.imap_folder.data or "").strip() or "INBOX",
            move_to=(self.imap_move_to.data or "").strip() or None,
            auth=self.imap_auth.data or "password",
        )
        smtp = None
        if (self.smtp_host.data or "").strip():
            smtp_security = self.smtp_security.data or "starttls"
            default_port = {"ssl": 465, "starttls": 587}.get(smtp_security, 25)
            smtp = ServerConfig(
                host=(self.smtp_host.data or "").strip(),
                port=self.smtp_port.data or default_port,
                user=(self.smtp_user.data or "").strip() or None,
                password=self.smtp_password.data or None,
                security=smtp_security,
                auth=self.smtp_auth.data or "password",
            )
        oauth2 = None
        if (self.oauth2_token_url.data or "").strip():
            oauth2 = OAuth2Config(
                token_url=(self.oauth2_token_url.data or "").strip(),
                client_id=(self.oauth2_client_id.data or "").strip(),
                client_secret=self.oauth2_client_secret.data or None,
                refresh_token=self.oauth2_refresh_token.data or None,
                scope=(self.oauth2_scope.data or "").strip() or None,
            )
        return imap, smtp, oauth2
