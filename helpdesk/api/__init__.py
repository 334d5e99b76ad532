"""The REST API v1 (issue 14): JSON under ``/api/v1/`` for integrators, authenticated by an
agent's personal token only. ``setup.py`` wires it into the app; ``tickets``, ``customers`` (and
organizations), ``agents`` (and teams), ``webhooks``, ``events`` and ``attachments`` are its
resources; ``schemas`` its shapes (the OpenAPI document is generated
from them); ``auth``, ``errors``, ``pagination``, ``idempotency`` the contract every resource
shares; ``cli`` the ``helpdesk token`` commands. :func:`register_resource` is how the KB and
the chat channel (which ``helpdesk`` never imports) add theirs. docs/api.md is the
integrator's guide.

Imports nothing at import time, so ``helpdesk token ...`` starts without the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from flask_smorest import Blueprint


def init_app(app: Flask) -> None:
    from helpdesk.api.setup import init_app as _init_app

    _init_app(app)


def register_resource(app: Flask, blueprint: Blueprint, tag: str) -> None:
    """Serve ``blueprint`` as a resource of the REST API v1, like the built-in ones (token auth
    and scopes, no CSRF, the per-token rate limit, the one error shape, the OpenAPI document
    under ``tag``). Call after :func:`init_app`: ``create_app`` registers the KB and the
    channels after the API."""
    from helpdesk.api.setup import register_resource as _register

    _register(app, blueprint, tag)
