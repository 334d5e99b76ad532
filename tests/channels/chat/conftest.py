"""Fixtures for the chat tests: a real `helpdesk serve` process on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels.chat.settings import configure_chat_channel
from tests.channels.chat.servers import ChatSite, ServerProcess

WIDGET_ORIGIN = "https://shop.example"


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest, db_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatSite]:
    with ChatSite.on(request, db_backend, tmp_path_factory.mktemp("chat-instance")) as site:
        yield site


@pytest.fixture(scope="module")
def server(site: ChatSite) -> ServerProcess:
    # Before the server starts: it caches the allowed origins for a few seconds.
    site.run(lambda s: configure_chat_channel(s, allowed_origins=[WIDGET_ORIGIN]))
    return site.serve()
