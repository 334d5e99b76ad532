"""Agents (people who answer) and teams (queues of agents)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import AgentRole, str_enum

team_members = Table(
    "team_members",
    Base.metadata,
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[AgentRole] = mapped_column(
        str_enum(AgentRole, "agent_role"), default=AgentRole.AGENT
    )
    # UI language preference; None means "follow the browser".
    language: Mapped[str | None] = mapped_column(String(8))
    # IANA time zone for every date and time the agent sees; None means the instance's
    # (config TIMEZONE).
    timezone: Mapped[str | None] = mapped_column(String(64))
    # May publish, unpublish and archive knowledge-base articles (admins always may); other
    # agents write drafts.
    kb_editor: Mapped[bool] = mapped_column(default=False, server_default=false())
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the session id: raised on deactivation and password change, which signs out
    # every session (and remember-me cookie) made before.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")

    # Flask-Login protocol. Sessions store "agent:<id>:<session_version>": a customer id can
    # never be mistaken for an agent id, and raising the version ends every older session.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"agent:{self.id}:{self.session_version or 0}"

    # Templates tell agent sessions from portal (customer) sessions by this.
    is_agent = True

    @property
    def is_admin(self) -> bool:
        return self.role == AgentRole.ADMIN

    @property
    def can_publish_articles(self) -> bool:
        """Publish, unpublish, archive and change published KB articles."""
        return self.is_admin or bool(self.kb_editor)


class AssignmentMode(enum.StrEnum):
    """How new work in a team finds an agent (helpdesk.services.assignment)."""

    OFF = "off"
    ROUND_ROBIN = "round_robin"
    LEAST_OPEN = "least_open"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Automatic assignment. server_default so the migration fills existing teams with "off".
    assignment_mode: Mapped[AssignmentMode] = mapped_column(
        str_enum(AssignmentMode, "assignment_mode"),
        default=AssignmentMode.OFF,
        server_default=AssignmentMode.OFF.value,
    )
    # At most this many active (new/open/pending) tickets per agent; None = no cap.
    assignment_max_open: Mapped[int | None]
    # The round-robin pointer: the member who got the last ticket. Kept in the team row (not in
    # process memory) so the turn survives restarts and is shared by every worker; assigners
    # read and move it under a lock (helpdesk.services.assignment), so they take turns.
    assignment_last_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    # The team's business hours (models/calendars.py); None: the installation's default.
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))

    members: Mapped[list[Agent]] = relationship(secondary=team_members, back_populates="teams")
