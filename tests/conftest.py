"""Shared fixtures: ``app`` (on SQLite and on a real PostgreSQL), ``client``, a logged-in agent,
an event recorder, and factories that create data through the real services."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.models import Agent, AgentRole, Ticket
from helpdesk.services.agents import create_agent
from helpdesk.services.events import EventRecorder, capture_events
from helpdesk.services.inbound import Received, receive

pytest_plugins = ["tests.plugins.servers"]

PASSWORD = "correct horse battery"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        action="append",
        choices=["sqlite", "postgresql"],
        help="Run database tests on these backends only (default: both).",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that ran server processes shows the end of their logs: a flaky failure
    on CI is then explained by the report alone (the processes' temp dirs are gone by then)."""
    report = yield
    if report.failed and call.when == "call":
        shown: set[Path] = set()
        for name, value in getattr(item, "funcargs", {}).items():
            for proc in [value, *getattr(value, "servers", [])]:
                log = getattr(proc, "log", None)
                if isinstance(log, Path) and log.exists() and log not in shown:
                    shown.add(log)
                    tail = log.read_text(errors="replace").splitlines()[-80:]
                    report.sections.append((f"server log {name}: {log.name}", "\n".join(tail)))
    return report


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        backends = metafunc.config.getoption("--db") or ["sqlite", "postgresql"]
        only = metafunc.definition.get_closest_marker("only_on")
        if only is not None:
            # Behaviour one database has and the other has not (SQLite's BEGIN modes): the test
            # runs where it means something instead of passing elsewhere having checked nothing.
            backends = [b for b in backends if b in only.args]
        metafunc.parametrize("db_backend", backends, scope="session")


@pytest.fixture(scope="session")
def pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """One PostgreSQL database per test process, schema created once, emptied after each test."""
    cluster = request.getfixturevalue("postgres")
    from tests.servers import worker_id

    name = f"helpdesk_test_{worker_id()}"
    cluster.create_database(name)
    url = cluster.url(name)
    from helpdesk.db import make_engine

    engine = make_engine(url)
    import channels.chat.models
    import channels.email.models
    import channels.portal.models  # noqa: F401
    import helpdesk.models  # noqa: F401
    import kb.models  # noqa: F401

    Base.metadata.create_all(engine)
    engine.dispose()
    yield url


def _empty_postgres(app: Flask) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine(app).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO ticket_counter (id, value) VALUES (1, 1000)"))
        # Custom fields' own indexes (services/custom_fields.py) go with their fields.
        for (name,) in conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_tickets_cf_%'")
        ):
            conn.execute(text(f'DROP INDEX "{name}"'))


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    """Override in a test module to change configuration before the app is built."""
    return {}


class FreshClient(FlaskClient):
    """A test client whose requests start with an empty ``g``.

    Tests keep an app context pushed (to call services), and Flask reuses it for the client's
    requests; without this, ``g._login_user`` of one request would leak into the next, which
    never happens in production where each request gets a fresh app context.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        from flask import g, has_app_context

        if has_app_context():
            g.__dict__.clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def app(
    request: pytest.FixtureRequest, db_backend: str, tmp_path: Path, app_config: dict[str, Any]
) -> Iterator[Flask]:
    config: dict[str, Any] = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "TESTING": True,
        "WORKER_ENABLED": False,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "MAIL_FROM": "support@helpdesk.test",
        "BASE_URL": "http://helpdesk.test",
        "PASSWORD_HASH_PROFILE": "cheapest",
    }
    if db_backend == "postgresql":
        config["DATABASE_URL"] = request.getfixturevalue("pg_database")
    else:
        config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}"
    config.update(app_config)
    application = create_app(config)
    application.test_client_class = FreshClient
    if db_backend == "sqlite":
        Base.metadata.create_all(db.engine(application))
    yield application
    if db_backend == "postgresql":
        _empty_postgres(application)
    db.engine(application).dispose()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session inside an app context; tests commit explicitly like a request would."""
    with app.app_context(), app.test_request_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def events() -> Iterator[EventRecorder]:
    with capture_events() as recorder:
        yield recorder


@pytest.fixture
def agent(session: Session) -> Agent:
    agent = create_agent(session, "agent@example.com", "Alex Agent", PASSWORD, AgentRole.AGENT)
    session.commit()
    return agent


@pytest.fixture
def admin(session: Session) -> Agent:
    admin = create_agent(session, "admin@example.com", "Ada Admin", PASSWORD, AgentRole.ADMIN)
    session.commit()
    return admin


MakeTicket = Callable[..., Received]


@pytest.fixture
def make_ticket(session: Session) -> MakeTicket:
    """Open a ticket the way a customer does: through ``services.inbound.receive``."""
    counter = {"n": 0}

    def factory(
        sender: str = "customer@example.com",
        subject: str | None = None,
        text: str = "Hello, I need help with my order.",
        channel: str = "email",
        commit: bool = True,
        **kwargs: Any,
    ) -> Received:
        counter["n"] += 1
        msg = InboundMessage(
            channel_kind=channel,  # type: ignore[arg-type]
            identity_kind=kwargs.pop("identity_kind", "chat" if channel == "chat" else "email"),
            sender_address=sender,
            subject=subject if subject is not None else f"Question {counter['n']}",
            text=text,
            **kwargs,
        )
        received = receive(session, msg)
        if commit:
            session.commit()
        return received

    return factory


# --- web ---------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


class AgentClient:
    """A test client signed in as an agent, posting forms with their CSRF token like a browser."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.get(*args, **kwargs)

    def token(self) -> str:
        if self._token is None:
            self._token = csrf_token(self.client, "/agent/queue")
        return self._token

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        form = {"csrf_token": self.token(), **(data or {})}
        return self.client.post(path, data=form, **kwargs)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def agent_client(app: Flask, agent: Agent) -> AgentClient:
    client = app.test_client()
    response = login(client, agent.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return AgentClient(client)


@pytest.fixture
def ticket(make_ticket: MakeTicket) -> Ticket:
    return make_ticket().ticket


def bn(msgid: str) -> str:
    """The Bengali of an English UI string, from the compiled catalog; fails if there is none
    (a "page in Bengali" test must see translated text, not only ``lang="bn"``)."""
    from babel.support import Translations

    import helpdesk

    directory = Path(helpdesk.__file__).parent / "translations"
    text = Translations.load(str(directory), ["bn"], domain="messages").gettext(msgid)
    assert text and text != msgid, f"no Bengali for {msgid!r}"
    return str(text)


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver for webhook deliveries (tests/helpdesk/webhook_receiver.py)."""
    from tests.helpdesk.webhook_receiver import Receiver

    r = Receiver().start()
    yield r
    r.stop()
