"""Knowledge base: articles, categories, their search (kb.search), analytics and the agents'
editor. Registered by ``create_app`` through :func:`init_app` (the composition root)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    from helpdesk.worker import register_task
    from kb import (
        category_views,  # noqa: F401  (its routes join agent_bp before registering)
        models,  # noqa: F401  (Base.metadata sees the tables)
    )
    from kb.cli import kb_group
    from kb.indexer import index_pending
    from kb.views import agent_bp, api_bp, suggest_for_ticket

    app.config.setdefault("KB_SEARCH_MODE", "hybrid")
    app.config.setdefault("RATELIMIT_KB_SEARCH", "120 per minute")
    register_task(app, index_pending)
    app.register_blueprint(agent_bp)
    app.register_blueprint(api_bp)
    # /api/v1/kb/articles and /api/v1/kb/categories in the token API (helpdesk.api's extension
    # point: the core never imports kb).
    from kb.api import register as register_api

    register_api(app)
    app.cli.add_command(kb_group)
    # The ticket page asks this hook for suggested articles (helpdesk never imports kb).
    app.extensions["helpdesk.suggest_articles"] = suggest_for_ticket
    # `helpdesk demo` asks its registered hooks to add demo data (helpdesk never imports kb).
    app.extensions.setdefault("helpdesk.demo_hooks", []).append(load_demo_articles)


def load_demo_articles(session: Session) -> int:
    """Demo help-center articles in English and Bengali (kb/demo_articles/*.md), imported with
    the same importer as `helpdesk kb import`; the worker indexes them after commit."""
    from kb.importer import import_folder

    result = import_folder(session, Path(__file__).resolve().parent / "demo_articles")
    return len(result.created)
