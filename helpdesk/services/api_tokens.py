"""API tokens and Idempotency-Key records: create, list, revoke, authenticate, replay.

A token acts with its agent's permissions narrowed by its scope (``read``: GET only;
``write``: and the agent's writes; ``admin``: and the admin resources, only while the agent is
an admin). The secret is ``hd_`` + 43 URL-safe characters (32 random bytes); only its SHA-256
is stored. ``last_used_at`` is written at most once a minute per token (:data:`TOUCH_EVERY`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, ApiToken, IdempotencyKey, TokenScope
from helpdesk.services.errors import Forbidden, NotFound, ServiceError

TOKEN_MARK = "hd_"  # noqa: S105  (the visible start of every secret, no secret)
TOUCH_EVERY = timedelta(minutes=1)
IDEMPOTENCY_TTL = timedelta(hours=24)
# The first key of the advisory locks on Idempotency-Keys ("ik").
_LOCK_CLASS = 0x696B
SCOPES = tuple(s.value for s in TokenScope)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    session: Session, agent: Agent, name: str, scope: str = "read", *, actor: Agent | None = None
) -> NewToken:
    """A token for ``agent``; ``actor`` (default: the agent) must be the agent or an admin."""
    actor = actor or agent
    if actor.id != agent.id and not actor.is_admin:
        raise Forbidden(_("Only admins can create tokens for other agents."))
    name = (name or "").strip()
    if not name:
        raise ServiceError(_("Give the token a name."))
    if len(name) > 200:
        raise ServiceError(_("The name is too long."))
    if scope not in SCOPES:
        raise ServiceError(_("Unknown scope: %(scope)s", scope=scope))
    if scope == TokenScope.ADMIN and not agent.is_admin:
        raise Forbidden(_("Only admins can have tokens with the admin scope."))
    if not agent.active:
        raise ServiceError(_("%(name)s is deactivated.", name=agent.name))
    secret = TOKEN_MARK + secrets.token_urlsafe(32)
    token = ApiToken(
        agent_id=agent.id,
        name=name,
        scope=scope,
        token_hash=hash_secret(secret),
        prefix=secret[: len(TOKEN_MARK) + 6],
        created_at=utcnow(),
    )
    session.add(token)
    session.flush()
    return NewToken(token, secret)


def list_tokens(session: Session, agent: Agent | None = None) -> list[ApiToken]:
    """Tokens (revoked ones too), newest first; every agent's when ``agent`` is None."""
    q = select(ApiToken).order_by(ApiToken.id.desc())
    if agent is not None:
        q = q.where(ApiToken.agent_id == agent.id)
    return list(session.scalars(q))


def revoke_token(
    session: Session, token_id: int, actor: Agent | None, *, now: datetime | None = None
) -> ApiToken:
    """Revoke a token: its own agent or an admin may (``actor`` None: the command line)."""
    token = session.get(ApiToken, token_id)
    if token is None or (actor is not None and token.agent_id != actor.id and not actor.is_admin):
        raise NotFound(_("Token not found."))
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
    return token


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """The active token of an active agent with this secret, else None."""
    if not secret.startswith(TOKEN_MARK) or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret)))
    if token is None or token.revoked_at is not None or not token.agent.active:
        return None
    return token


def needs_touch(token: ApiToken, now: datetime | None = None) -> bool:
    """Whether this use is worth recording (the last was a minute ago or more)."""
    now = now or utcnow()
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


def touch_token(session: Session, token_id: int, now: datetime | None = None) -> None:
    """Record a use (callers ask :func:`needs_touch` first: one write a minute, not a request)."""
    session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now or utcnow())
    )


def effective_scope(token: ApiToken) -> TokenScope:
    """The scope as it stands today: an admin token of an agent no longer admin is ``write``."""
    scope = TokenScope(token.scope)
    if scope == TokenScope.ADMIN and not token.agent.is_admin:
        return TokenScope.WRITE
    return scope


# --- Idempotency-Key ------------------------------------------------------------------------


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def find_idempotent(
    session: Session, token: ApiToken, key: str, fingerprint: str, *, now: datetime | None = None
) -> StoredResponse | None:
    """The response stored for this key, if any; the same key with another request is a
    ServiceError ``idempotency_key_reused``.

    Holds the key until the caller's transaction ends: a second request with the same key waits
    here until the first has committed (with its stored response, which it then replays) or
    rolled back (and then runs itself). On PostgreSQL an advisory lock on (token, key); on
    SQLite the writing transaction already holds the database's one write lock."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"{token.id}:{key}".encode("utf-8", "surrogatepass")).digest()
        session.execute(
            select(
                func.pg_advisory_xact_lock(_LOCK_CLASS, int.from_bytes(digest[:4], signed=True))
            )
        )
    since = (now or utcnow()) - IDEMPOTENCY_TTL
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.token_id == token.id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > since,
        )
    )
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise ServiceError(
            _("This Idempotency-Key was used with a different request."),
            code="idempotency_key_reused",
        )
    return StoredResponse(row.status_code, row.body)


def remember_response(
    session: Session,
    token: ApiToken,
    key: str,
    fingerprint: str,
    status_code: int,
    body: Any,
    *,
    now: datetime | None = None,
) -> None:
    """Store the response in the caller's transaction (with what the request changed). The
    token's expired records go at the same time (an expired record of the same key too), so
    the table holds a day of keys per token without a sweeper."""
    now = now or utcnow()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.token_id == token.id,
            IdempotencyKey.created_at <= now - IDEMPOTENCY_TTL,
        )
    )
    session.add(
        IdempotencyKey(
            token_id=token.id,
            key=key,
            request_hash=fingerprint,
            status_code=status_code,
            # Stored as given, replayed byte for byte in meaning (JSON round trip).
            body=json.loads(json.dumps(body)),
            created_at=now,
        )
    )


def purge_idempotency_keys(session: Session, *, now: datetime | None = None) -> int:
    """Forget keys older than 24 hours; returns how many."""
    cutoff = (now or utcnow()) - IDEMPOTENCY_TTL
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
