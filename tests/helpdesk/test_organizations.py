"""Organizations: email domains link new customers (every channel, the mail batch too) and
existing ones on demand; merge; duplicate names and domains refused with a clear message."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.migrate import upgrade
from helpdesk.models import Agent, AuditEvent, Customer, Organization
from helpdesk.services import customers, organizations, stream, views
from helpdesk.services.errors import Conflict
from helpdesk.services.inbound_batch import prefetch, receive_batch
from tests.conftest import MakeTicket, bn


def _events(session: Session, after: int) -> list[stream.StoredEvent]:
    return stream.read(session, after=after, limit=1000)


@pytest.fixture
def acme(session: Session, agent: Agent) -> Organization:
    org = organizations.create_organization(
        session, "Acme Ltd", domains="acme.example\n@Acme-BD.example.", notes="", actor=agent
    )
    session.commit()
    return org


def test_domains_are_normalised_and_validated(session: Session, agent: Agent) -> None:
    start = stream.last_id(session)
    org = organizations.create_organization(
        session, "  বিকাশ   লিমিটেড ", domains="Bikash.example, বিকাশ.বাংলা bikash.example", actor=agent
    )
    session.commit()
    assert org.name == "বিকাশ লিমিটেড"
    assert org.domain_names == ["bikash.example", "xn--p5b9b5a5ad.xn--54b7fta0cc"]
    [created] = _events(session, start)
    assert created.name == "organization.created"
    assert created.data == {"name": "বিকাশ লিমিটেড", "domains": org.domain_names}
    for bad in (
        "not a domain",
        "localhost",
        "exa_mple.com",
        "-x.example",
        "x..example",
        "a@b.example",
    ):
        with pytest.raises(organizations.InvalidDomain) as err:
            organizations.parse_domains(bad)
        assert "Not a domain" in str(err.value)


@pytest.mark.parametrize(
    ("channel", "sender", "extra"),
    [
        ("email", "Rina@ACME.example", {}),
        ("portal", "rina@acme-bd.example", {}),
        ("chat", "rina@acme.example", {"identity_kind": "email"}),
    ],
)
def test_a_new_customer_from_a_domain_joins_its_organization(
    session: Session,
    acme: Organization,
    make_ticket: MakeTicket,
    channel: str,
    sender: str,
    extra: dict[str, str],
) -> None:
    start = stream.last_id(session)
    customer = make_ticket(sender=sender, channel=channel, **extra).ticket.customer
    assert customer.organization_id == acme.id
    created = next(e for e in _events(session, start) if e.name == "customer.created")
    assert created.data["organization_id"] == acme.id
    # Another domain, and a chat visitor with no address: no organization.
    other = make_ticket(sender="rina@elsewhere.example", channel=channel, **extra).ticket
    assert other.customer.organization_id is None
    visitor = make_ticket(sender="visitor-7", channel="chat").ticket
    assert visitor.customer.organization_id is None


def test_the_mail_batch_links_new_senders_and_cc_by_domain(
    session: Session, acme: Organization
) -> None:
    msgs = [
        InboundMessage(
            channel_kind="email",
            identity_kind="email",
            sender_address="one@acme.example",
            subject="first",
            text="hello",
            cc=["two@acme-bd.example", "three@elsewhere.example"],
        ),
        InboundMessage(
            channel_kind="email",
            identity_kind="email",
            sender_address="four@elsewhere.example",
            subject="second",
            text="hello",
        ),
    ]
    receive_batch(session, msgs, prefetch(session, msgs))
    session.commit()
    orgs = dict(session.execute(select(Customer.email, Customer.organization_id)).all())
    assert orgs == {
        "one@acme.example": acme.id,
        "two@acme-bd.example": acme.id,
        "three@elsewhere.example": None,
        "four@elsewhere.example": None,
    }


def test_an_agent_created_customer_joins_by_domain_unless_named(
    session: Session, acme: Organization, agent: Agent
) -> None:
    by_domain = customers.create_customer(session, "boss@acme.example", actor=agent)
    named = customers.create_customer(session, "x@acme.example", organization="Globex", actor=agent)
    session.commit()
    assert by_domain.organization_id == acme.id
    assert named.organization is not None and named.organization.name == "Globex"


def test_existing_customers_are_linked_on_demand(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    early = make_ticket(sender="early@globex.example").ticket.customer
    second = make_ticket(sender="visitor-9", channel="chat").ticket.customer
    customers.add_identity(session, second, "email", "second@GLOBEX.example")
    elsewhere = make_ticket(sender="n@globex.example.org").ticket.customer
    taken = make_ticket(sender="t@globex.example").ticket.customer
    customers.update_customer(session, taken, organization="Initech", actor=agent)
    session.commit()
    org = organizations.create_organization(session, "Globex", domains=["globex.example"])
    session.commit()
    start = stream.last_id(session)
    assert organizations.link_domain_customers(session, org, agent) == 2
    session.commit()
    session.expire_all()
    assert session.get(Customer, early.id).organization_id == org.id  # type: ignore[union-attr]
    assert session.get(Customer, second.id).organization_id == org.id  # type: ignore[union-attr]
    assert session.get(Customer, elsewhere.id).organization_id is None  # type: ignore[union-attr]
    # A customer of another organization stays there.
    assert session.get(Customer, taken.id).organization.name == "Initech"  # type: ignore[union-attr]
    updated = _events(session, start)
    assert [(e.name, e.subject_id, e.data) for e in updated] == [
        (
            "customer.updated",
            cid,
            {"changes": {"organization_id": {"from": None, "to": org.id}}},
        )
        for cid in sorted([early.id, second.id])
    ]
    assert all(e.actor_type == "agent" and e.actor_id == agent.id for e in updated)
    # Again: nothing left to link.
    assert organizations.link_domain_customers(session, org, agent) == 0


def test_edit_records_changed_fields(session: Session, acme: Organization, agent: Agent) -> None:
    start = stream.last_id(session)
    changes = organizations.update_organization(
        session,
        acme,
        name="Acme Bangladesh",
        notes="Pays yearly",
        domains="acme.example\nacme.com.bd",
        actor=agent,
    )
    session.commit()
    assert acme.domain_names == ["acme.com.bd", "acme.example"]
    expected = {
        "name": {"from": "Acme Ltd", "to": "Acme Bangladesh"},
        "notes": {"from": "", "to": "Pays yearly"},
        "domains": {
            "from": ["acme-bd.example", "acme.example"],
            "to": ["acme.com.bd", "acme.example"],
        },
    }
    assert changes == expected
    [event] = _events(session, start)
    assert (event.name, event.subject_id, event.data) == (
        "organization.updated",
        acme.id,
        {"changes": expected},
    )
    # Nothing changed: no event.
    organizations.update_organization(session, acme, name="Acme Bangladesh", actor=agent)
    session.commit()
    assert _events(session, event.id) == []


def test_duplicates_are_refused_with_a_clear_message(
    session: Session, acme: Organization, agent: Agent
) -> None:
    with pytest.raises(Conflict) as err:
        organizations.create_organization(session, "ACME ltd", actor=agent)
    assert err.value.code == "name_taken"
    assert str(err.value) == "Another organization is already called Acme Ltd."
    with pytest.raises(Conflict) as err:
        organizations.create_organization(session, "Other", domains=["ACME.example"])
    assert err.value.code == "domain_taken"
    assert str(err.value) == "The domain acme.example belongs to another organization: Acme Ltd."
    session.rollback()
    other = organizations.create_organization(session, "Other", domains=["other.example"])
    session.commit()
    with pytest.raises(Conflict):
        organizations.update_organization(session, other, domains=["acme-bd.example"])
    session.rollback()
    with force_locale("bn"):
        with pytest.raises(Conflict) as err:
            organizations.update_organization(session, other, name="acme LTD")
        assert bn("Another organization is already called %(name)s.").replace(
            "%(name)s", "Acme Ltd"
        ) == str(err.value)
        with pytest.raises(organizations.InvalidDomain) as bad:
            organizations.update_organization(session, other, domains="nope")
        assert str(bad.value) == bn("Not a domain: %(domain)s").replace("%(domain)s", "nope")
    session.rollback()


def test_merge_moves_everything_and_records_it(
    session: Session, acme: Organization, make_ticket: MakeTicket, agent: Agent
) -> None:
    member = make_ticket(sender="a@acme.example").ticket.customer
    old = organizations.create_organization(
        session, "ACME (old)", domains=["old-acme.example"], notes="Signed in 2019"
    )
    session.commit()
    moved = [make_ticket(sender=f"p{i}@old-acme.example").ticket.customer for i in range(2)]
    organizations.update_organization(session, acme, notes="Main office in Dhaka")
    session.commit()
    old_id = old.id
    kept = views.save_view(session, agent, "Old ACME", {"view": "all", "organization": old_id})
    session.commit()
    start = stream.last_id(session)
    assert organizations.merge_organizations(session, old, acme, agent) == 2
    session.commit()
    session.expire_all()
    assert session.get(Organization, old_id) is None
    members = session.scalars(select(Customer.id).where(Customer.organization_id == acme.id))
    assert sorted(members) == sorted([member.id, *(c.id for c in moved)])
    assert acme.domain_names == ["acme-bd.example", "acme.example", "old-acme.example"]
    assert acme.notes == "Main office in Dhaka\n\nACME (old):\nSigned in 2019"
    # A saved view filtered by the merged organization now shows the one it became.
    assert kept.args == {"view": "all", "organization": str(acme.id)}
    events = _events(session, start)
    assert [e.name for e in events] == [
        "customer.updated",
        "customer.updated",
        "organization.merged",
        "organization.updated",
    ]
    assert events[2].subject_id == old_id
    assert events[2].data == {"into_organization_id": acme.id, "customers": 2}
    assert set(events[3].data["changes"]) == {"notes", "domains"}
    trail = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "organization.merged")
    ).one()
    assert trail.actor_agent_id == agent.id and trail.data["merged_name"] == "ACME (old)"
    # New mail from the merged organization's domain now lands in the one left.
    assert make_ticket(sender="late@old-acme.example").ticket.customer.organization_id == acme.id
    with pytest.raises(Exception, match="cannot be merged into itself"):
        organizations.merge_organizations(session, acme, acme, agent)


def test_migration_moves_the_old_domain_column(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    else:
        cluster = request.getfixturevalue("postgres")
        name = f"migr_{abs(hash(request.node.name)) % 10**8}"
        cluster.create_database(name)
        request.addfinalizer(lambda: cluster.drop_database(name))
        url = str(cluster.url(name))
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": url})
    upgrade(app, "0016")
    engine = db.engine(app)
    with engine.begin() as conn:
        for org_id, name, domain in [
            (1, "Acme", " Acme.Example "),
            (2, "Acme again", "acme.example"),
            (3, "Globex", "globex.example"),
            (4, "None", None),
        ]:
            conn.execute(
                text(
                    "INSERT INTO organizations (id, name, domain, notes, created_at)"
                    " VALUES (:id, :name, :domain, '', :now)"
                ),
                {"id": org_id, "name": name, "domain": domain, "now": "2026-12-07 10:00:00"},
            )
        conn.execute(
            text(
                "INSERT INTO customers (id, name, email, notes, created_at, updated_at,"
                " organization_id) VALUES (1, 'রহিম', 'r@acme.example', '', :now, :now, 1)"
            ),
            {"now": "2026-12-07 10:00:00"},
        )
    upgrade(app)
    with engine.connect() as conn:
        # The organizations table is changed in place: its customers keep it.
        assert conn.execute(text("SELECT organization_id FROM customers")).scalar() == 1
        rows = conn.execute(
            text("SELECT organization_id, domain FROM organization_domains ORDER BY domain")
        ).all()
    assert [tuple(r) for r in rows] == [(1, "acme.example"), (3, "globex.example")]
    engine.dispose()


@pytest.mark.only_on("postgresql")  # SQLite's writers queue at BEGIN: the race cannot happen
def test_two_creations_of_one_domain_at_once(app: Flask) -> None:
    """Both look before either commits; the second waits on the unique index and then gets the
    same clear refusal as if the first had been there before (not a 500)."""
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with app.app_context(), db.transaction(app) as s2:
                organizations.create_organization(s2, "Acme two", domains=["acme.example"])
        except BaseException as exc:  # checked below
            errors.append(exc)

    with app.app_context():
        with db.transaction(app) as s1:
            organizations.create_organization(s1, "Acme", domains=["acme.example"])
            thread = threading.Thread(target=second)
            thread.start()
            deadline = time.monotonic() + 10
            waiting = 0
            while time.monotonic() < deadline:
                with db.engine(app).connect() as probe:
                    waiting = probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    )
                if waiting:
                    break
                time.sleep(0.01)
            assert waiting, "the second transaction never waited on the first"
        thread.join(10)
    [error] = errors
    assert isinstance(error, Conflict) and error.code == "domain_taken"
    assert "belongs to another organization: Acme." in str(error)
