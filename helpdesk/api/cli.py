"""``helpdesk token create|list|revoke``: API tokens from the command line (no web layer)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Agent
from helpdesk.services import api_tokens
from helpdesk.services.errors import ServiceError


@click.group("token")
def token() -> None:
    """Personal API tokens of agents (REST API v1, docs/api.md)."""


def _agent(session: object, email: str) -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    if agent is None:
        raise click.ClickException(f"No agent with the email {email}.")
    return agent


@token.command("create")
@click.option("--agent", "email", required=True, help="The agent the token acts as.")
@click.option("--name", required=True, help="What it is for, to recognise it in a list.")
@click.option("--scope", type=click.Choice(api_tokens.SCOPES), default="read", show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"token", "id", "scope"}.')
@with_appcontext
def create(email: str, name: str, scope: str, as_json: bool) -> None:
    """Create a token; its secret is printed once and never again."""
    agent = _agent(db.session, email)
    try:
        new = api_tokens.create_token(db.session, agent, name, scope)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    if as_json:
        click.echo(json.dumps({"token": new.secret, "id": new.token.id, "scope": scope}))
        return
    click.echo(f"Token {new.token.id} ({scope}) for {agent.email}: {new.secret}")
    click.echo("Copy it now: it is not shown again.")


@token.command("list")
@click.option("--agent", "email", default=None, help="Only this agent's tokens.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_(email: str | None, as_json: bool) -> None:
    """Tokens (never their secrets), newest first."""
    agent = _agent(db.session, email) if email else None
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "agent": t.agent.email,
            "scope": t.scope,
            "prefix": t.prefix,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in api_tokens.list_tokens(db.session, agent)
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        used = r["last_used_at"] or "never"
        click.echo(
            f"{r['id']:>5}  {r['prefix']}…  {r['scope']:<5}  {r['agent']}  {r['name']}"
            f"  (last used {used}; {state})"
        )


@token.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once."""
    try:
        api_tokens.revoke_token(db.session, token_id, None)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Token {token_id} revoked.")
