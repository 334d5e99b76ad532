"""Fixtures for the chat tests: a real `helpdesk serve` process on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from helpdesk.services.chat import configure_chat_channel
from tests.channels.chat.servers import ChatSite, ServerProcess

WIDGET_ORIGIN = "https://shop.example"


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest, db_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatSite]:
    instance = tmp_path_factory.mktemp("chat-instance")
    if db_backend == "postgresql":
        url = request.getfixturevalue("postgres").create_database(f"chat_{uuid.uuid4().hex[:10]}")
    else:
        url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
    chat_site = ChatSite(instance=instance, database_url=url)
    chat_site.setup()
    try:
        yield chat_site
    finally:
        chat_site.close()


@pytest.fixture(scope="module")
def server(site: ChatSite) -> ServerProcess:
    # Before the server starts: it caches the allowed origins for a few seconds.
    site.run(lambda s: configure_chat_channel(s, allowed_origins=[WIDGET_ORIGIN]))
    return site.serve()
