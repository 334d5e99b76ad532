"""The REST API v1 (issue 14): JSON under ``/api/v1/`` for integrators, authenticated by an
agent's personal token only. ``setup.py`` wires it into the app; ``tickets``, ``customers`` (and
organizations), ``agents`` (and teams), ``webhooks``, ``events`` and ``attachments`` are its
resources; ``schemas`` its shapes (the OpenAPI document is generated
from them); ``auth``, ``errors``, ``pagination``, ``idempotency`` the contract every resource
shares; ``cli`` the ``helpdesk token`` commands. docs/api.md is the integrator's guide.

Imports nothing at import time, so ``helpdesk token ...`` starts without the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    from helpdesk.api.setup import init_app as _init_app

    _init_app(app)
