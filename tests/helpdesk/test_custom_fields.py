"""Custom fields, the service: definitions, every type's values (and their errors in the
reader's language), the events and history of a change, required on resolve, filtering through
the field's own index, and deleting a field with its values."""

from __future__ import annotations

from typing import Any

import pytest
from flask_babel import force_locale
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpdesk.models import (
    Agent,
    AuditEvent,
    Customer,
    CustomField,
    Ticket,
    TicketStatus,
)
from helpdesk.services import custom_fields as cf
from helpdesk.services import organizations, stream, tickets
from helpdesk.services.errors import Conflict, ServiceError
from tests.conftest import MakeTicket

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture
def plan(session: Session, admin: Agent) -> CustomField:
    field = cf.define_field(
        session,
        admin,
        object_type="ticket",
        key="plan",
        type="dropdown",
        label_en="Plan",
        label_bn="প্ল্যান",
        options=["free | Free | ফ্রি", "gold | Gold | গোল্ড"],
        required_on_resolve=True,
    )
    session.commit()
    return field


def _define(session: Session, admin: Agent, key: str, kind: str, **kw: Any) -> CustomField:
    field = cf.define_field(
        session,
        admin,
        object_type=kw.pop("object_type", "ticket"),
        key=key,
        type=kind,
        label_en=kw.pop("label_en", key.title()),
        **kw,
    )
    session.commit()
    return field


def test_each_type_stores_what_it_means(session: Session, admin: Agent) -> None:
    f = {
        kind: _define(session, admin, f"f_{kind}", kind, options=["a", "b", "c"])
        for kind in ("text", "long_text", "number", "date", "multi_select", "checkbox", "url")
    }
    assert cf.clean_value(f["text"], "  many   spaces ") == "many spaces"
    assert cf.clean_value(f["long_text"], "line 1\n\nline 2\n") == "line 1\n\nline 2"
    assert cf.clean_value(f["number"], "1,250") == 1250
    assert cf.clean_value(f["number"], 2.5) == 2.5
    assert cf.clean_value(f["date"], "2026-04-14") == "2026-04-14"
    assert cf.clean_value(f["multi_select"], ["c", "a", "a"]) == ["a", "c"]  # the options' order
    assert cf.clean_value(f["multi_select"], "b, c") == ["b", "c"]  # a CSV cell
    assert cf.clean_value(f["checkbox"], "yes") is True
    assert cf.clean_value(f["checkbox"], False) is False
    assert cf.clean_value(f["url"], "https://example.com/a") == "https://example.com/a"
    assert cf.clean_value(f["text"], "") is None  # clears
    assert cf.clean_value(f["text"], "বাংলা লেখা") == "বাংলা লেখা"
    for kind, bad in [
        ("number", "twelve"),
        ("number", "NaN"),
        ("number", 10**20),
        ("date", "14/04/2026"),
        ("date", "2026-02-30"),
        ("multi_select", ["z"]),
        ("checkbox", "maybe"),
        ("url", "javascript:alert(1)"),
        ("url", "example.com"),
        ("text", "x" * 1001),
        ("text", {"a": 1}),
    ]:
        with pytest.raises(cf.FieldErrors) as err:
            cf.clean_value(f[kind], bad)
        assert list(err.value.fields) == [f[kind].key]


def test_errors_name_the_field_in_the_readers_language(
    app: Any, session: Session, plan: CustomField
) -> None:
    with app.test_request_context(), force_locale("bn"), pytest.raises(cf.FieldErrors) as err:
        cf.clean_values([plan], {"plan": "platinum", "nope": 1})
    assert "প্ল্যান" in err.value.fields["plan"]
    assert "platinum" in err.value.fields["plan"]
    assert "Plan" not in err.value.fields["plan"]
    assert set(err.value.fields) == {"plan", "nope"}  # every error at once
    with app.test_request_context(), force_locale("en"), pytest.raises(cf.FieldErrors) as err:
        cf.clean_values([plan], {"plan": "platinum"})
    assert err.value.fields["plan"] == "platinum is not an option of Plan."
    assert err.value.code == "invalid_custom_field"


def test_definitions_are_checked(session: Session, admin: Agent, plan: CustomField) -> None:
    with pytest.raises(Conflict):
        _define(session, admin, "plan", "text")
    session.rollback()
    _define(session, admin, "plan", "text", object_type="customer")  # another object: fine
    for key in ("Plan", "9lives", "a-b", "x" * 41, ""):
        with pytest.raises(ServiceError):
            _define(session, admin, key, "text")
        session.rollback()
    with pytest.raises(ServiceError):
        _define(session, admin, "tier", "dropdown")  # no options
    session.rollback()
    with pytest.raises(ServiceError):
        cf.clean_options(["a", "a"])
    with pytest.raises(ServiceError):  # on the portal form but hidden from customers
        _define(session, admin, "sku", "text", on_portal_form=True)
    session.rollback()
    assert cf.clean_options([{"value": "x", "label": {"en": "X", "bn": "এক্স"}}]) == [
        {"value": "x", "en": "X", "bn": "এক্স"}
    ]


def test_setting_values_records_history_and_one_update_event(
    session: Session, admin: Agent, agent: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    seats = _define(session, admin, "seats", "number")
    ticket = make_ticket().ticket
    version = ticket.version
    start = stream.last_id(session)
    changes = cf.set_values(session, ticket, {"plan": "gold", "seats": "12"}, agent)
    session.commit()
    assert changes == {
        "custom.plan": {"from": None, "to": "gold"},
        "custom.seats": {"from": None, "to": 12},
    }
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket is not None and ticket.custom == {"plan": "gold", "seats": 12}
    assert ticket.version > version
    events = stream.read(session, after=start)
    assert [e.name for e in events] == ["ticket.updated"]
    assert events[0].data["changes"]["custom.plan"] == {"from": None, "to": "gold"}
    history = session.scalars(
        select(AuditEvent).where(
            AuditEvent.ticket_id == ticket.id, AuditEvent.action == "ticket.custom"
        )
    ).all()
    assert {(h.data["key"], h.data["to"]) for h in history} == {("plan", "gold"), ("seats", 12)}
    # the same values again: nothing changes, nothing recorded
    assert cf.set_values(session, ticket, {"plan": "gold"}, agent) == {}
    # None clears
    cf.set_values(session, ticket, {"plan": None, "seats": None}, agent)
    session.commit()
    session.expire_all()
    assert session.get(Ticket, ticket.id).custom is None  # type: ignore[union-attr]
    assert seats.active


def test_customer_and_organization_values_are_their_updated_events(
    session: Session, admin: Agent, agent: Agent, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "vip", "checkbox", object_type="customer")
    _define(session, admin, "contract", "date", object_type="organization")
    customer = make_ticket().ticket.customer
    org = organizations.create_organization(session, "Acme", actor=agent)
    session.commit()
    start = stream.last_id(session)
    cf.set_values(session, customer, {"vip": True}, agent)
    cf.set_values(session, org, {"contract": "2027-01-31"}, agent)
    session.commit()
    events = stream.read(session, after=start)
    assert [(e.name, e.data["changes"]) for e in events] == [
        ("customer.updated", {"custom.vip": {"from": None, "to": True}}),
        ("organization.updated", {"custom.contract": {"from": None, "to": "2027-01-31"}}),
    ]
    with pytest.raises(cf.FieldErrors):  # a ticket field is no customer field
        cf.set_values(session, customer, {"plan": "gold"}, agent)


def test_an_agent_cannot_resolve_without_the_required_fields(
    session: Session, agent: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket().ticket
    with pytest.raises(cf.FieldErrors) as err:
        tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    assert "Plan" in str(err.value)
    with pytest.raises(cf.FieldErrors):
        tickets.reply_to_ticket(session, ticket, agent, "Done!", status=TicketStatus.RESOLVED)
    session.rollback()
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)  # other moves are fine
    # the customer closing it themselves is not held up
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, ticket.customer)
    tickets.set_status(session, ticket, TicketStatus.OPEN, agent)
    cf.set_values(session, ticket, {"plan": "free"}, agent)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    session.commit()
    assert ticket.status == TicketStatus.RESOLVED
    # an archived field no longer holds anything up
    other = make_ticket().ticket
    cf.update_field(session, plan, agent, active=False)
    tickets.set_status(session, other, TicketStatus.RESOLVED, agent)


def _plan_of(session: Session, where: Any) -> list[int]:
    return list(session.scalars(select(Ticket.id).where(where).order_by(Ticket.id)))


def test_filters_find_the_tickets_with_a_value(
    session: Session, admin: Agent, agent: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    urgent = _define(session, admin, "escalated", "checkbox")
    regions = _define(session, admin, "regions", "multi_select", options=["dhaka", "ctg"])
    seats = _define(session, admin, "seats", "number")
    a, b, c = (make_ticket().ticket for _ in range(3))
    cf.set_values(
        session, a, {"plan": "gold", "escalated": True, "regions": ["dhaka", "ctg"]}, agent
    )
    cf.set_values(session, b, {"plan": "free", "escalated": False, "seats": 2.5}, agent)
    cf.set_values(session, c, {"regions": ["ctg"], "seats": 3}, agent)
    session.commit()
    assert _plan_of(session, cf.filter_clause(session, plan, "gold")) == [a.id]
    assert _plan_of(session, cf.filter_clause(session, urgent, "yes")) == [a.id]
    assert _plan_of(session, cf.filter_clause(session, urgent, "no")) == [b.id, c.id]
    assert _plan_of(session, cf.filter_clause(session, regions, "ctg")) == [a.id, c.id]
    assert _plan_of(session, cf.filter_clause(session, regions, "dhaka")) == [a.id]
    assert _plan_of(session, cf.filter_clause(session, seats, "3")) == [c.id]
    assert _plan_of(session, cf.filter_clause(session, seats, 2.5)) == [b.id]
    with pytest.raises(cf.FieldErrors):
        cf.filter_clause(session, plan, "platinum")


def test_a_dropdown_filter_walks_its_own_index(
    session: Session, plan: CustomField, make_ticket: MakeTicket
) -> None:
    make_ticket()
    query = (
        select(Ticket.id)
        .where(cf.filter_clause(session, plan, "gold"))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(50)
    )
    compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan_text = " ".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")))
    else:
        plan_text = " ".join(
            str(r[-1]) for r in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert cf.index_name(plan) in plan_text
    assert "TEMP B-TREE" not in plan_text  # no sort: the index is in the queue's order


def test_deleting_a_field_removes_its_values_and_index(
    session: Session, admin: Agent, agent: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    note = _define(session, admin, "note", "text")
    ticket = make_ticket().ticket
    cf.set_values(session, ticket, {"plan": "gold", "note": "keep me"}, agent)
    session.commit()
    assert cf.delete_field(session, plan, admin) == 1
    assert ticket.custom == {"note": "keep me"}  # the ticket this session holds too
    session.commit()
    session.expire_all()
    assert session.get(Ticket, ticket.id).custom == {"note": "keep me"}  # type: ignore[union-attr]
    assert session.get(CustomField, note.id) is not None
    names = {
        r[0]
        for r in session.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'tickets'")
            if session.get_bind().dialect.name == "postgresql"
            else text("SELECT name FROM sqlite_master WHERE type = 'index'")
        )
    }
    assert not any(n.startswith("ix_tickets_cf_") for n in names)
    # the key is free again and starts empty
    again = _define(session, admin, "plan", "dropdown", options=["x"])
    assert again.id and session.get(Ticket, ticket.id).custom == {"note": "keep me"}  # type: ignore[union-attr]
    assert isinstance(ticket.customer, Customer)


def test_the_queue_filters_by_custom_fields(
    session: Session, agent: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    from helpdesk.services.queue import QueueFilter, queue_page, queue_rows

    gold, _free = make_ticket().ticket, make_ticket().ticket
    cf.set_values(session, gold, {"plan": "gold"}, agent)
    session.commit()
    flt = QueueFilter.from_args({"view": "all", "cf.plan": "gold", "cf.other": ""})
    assert flt.custom == (("plan", "gold"),)
    assert flt.as_args()["cf.plan"] == "gold"  # saved views keep it
    assert [r.id for r in queue_rows(session, flt, agent=agent).rows] == [gold.id]
    assert [t.id for t in queue_page(session, flt, agent=agent).tickets] == [gold.id]
    for bad in ({"cf.nope": "x"}, {"cf.plan": "platinum"}, {"cf.Bad-Key": "x"}):
        with pytest.raises(ServiceError):
            queue_rows(session, QueueFilter.from_args({"view": "all", **bad}), agent=agent)


def test_a_form_s_answers_arrive_with_the_new_ticket(
    session: Session, admin: Agent, plan: CustomField, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "tier", "dropdown", object_type="customer", options=["a", "b"])
    start = stream.last_id(session)
    received = make_ticket(channel="portal", custom={"plan": "gold"}, customer_custom={"tier": "b"})
    ticket = received.ticket
    assert ticket.custom == {"plan": "gold"} and ticket.customer.custom == {"tier": "b"}
    names = [e.name for e in stream.read(session, after=start)]
    assert "ticket.created" in names and "ticket.updated" not in names  # created with them
    with pytest.raises(cf.FieldErrors):
        make_ticket(channel="portal", custom={"plan": "platinum"})


def test_agents_watching_the_ticket_are_told_its_new_values(
    session: Session, agent: Agent, plan: CustomField, make_ticket: MakeTicket, events: Any
) -> None:
    """The live ``ticket.updated`` carries the values: another agent's open page compares them
    with what it loaded and says the ticket changed (helpdesk/static/js/agent.js)."""
    ticket = make_ticket().ticket
    events.events.clear()
    cf.set_values(session, ticket, {"plan": "gold"}, agent)
    session.commit()
    assert events.names() == ["ticket.updated"]
    assert events.events[-1].payload["custom"] == {"plan": "gold"}
