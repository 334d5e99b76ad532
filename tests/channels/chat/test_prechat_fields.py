"""Custom fields on the chat's pre-chat form, over the real /chat namespace: ``chat.hello``
tells the widget which fields to ask (labels in its language, agent-only ones never), a bad or
missing answer to ``chat.start`` is an ``invalid`` acknowledgement naming the field in the
visitor's language with nothing stored, and good answers land on the chat's ticket and customer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask_socketio import SocketIOTestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.extensions import socketio
from helpdesk.models import Agent, Ticket
from helpdesk.services import custom_fields as cf
from helpdesk.services.presence import agent_connected, set_presence
from tests.conftest import bn

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture
def online(session: Session, agent: Agent, admin: Agent) -> None:
    """An agent to chat with, and the fields: two asked before a chat, one agent-only."""
    agent_connected(session, agent, "sid-agent")
    set_presence(session, agent, "online")
    define = cf.define_field
    define(
        session,
        admin,
        object_type="ticket",
        key="order_no",
        type="text",
        label_en="Order number",
        label_bn="অর্ডার নম্বর",
        visible_to_customers=True,
        on_prechat_form=True,
        required_on_forms=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="product",
        type="dropdown",
        label_en="Product",
        label_bn="পণ্য",
        options=["phone | Phone | ফোন", "laptop | Laptop | ল্যাপটপ"],
        visible_to_customers=True,
        on_prechat_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="portal_only",
        type="text",
        label_en="Portal only",
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="refund_ok",
        type="checkbox",
        label_en="Refund approved",
    )
    define(
        session,
        admin,
        object_type="customer",
        key="tier",
        type="dropdown",
        label_en="Customer tier",
        label_bn="গ্রাহক স্তর",
        options=["basic | Basic | বেসিক", "gold | Gold | গোল্ড"],
        visible_to_customers=True,
        on_prechat_form=True,
    )
    session.commit()  # fmt: skip
    # The socket's handlers have their own session: end this test's transaction, as a request
    # would.
    session.rollback()


def _visitor(app: Flask, language: str = "en") -> SocketIOTestClient:
    return socketio.test_client(app, namespace="/chat", auth={"language": language})


def _call(sio: SocketIOTestClient, event: str, data: dict[str, Any]) -> Any:
    return sio.emit(event, data, namespace="/chat", callback=True)


def _start(sio: SocketIOTestClient, **data: Any) -> Any:
    return _call(sio, "chat.start", {"client_id": uuid.uuid4().hex, "text": "Hello", **data})


def _tickets(session: Session) -> int:
    session.rollback()
    count = int(session.scalar(select(func.count()).select_from(Ticket)) or 0)
    session.rollback()  # no transaction left open: the next event's handler writes
    return count


@pytest.mark.usefixtures("online")
def test_hello_tells_the_widget_which_fields_to_ask_in_its_language(app: Flask) -> None:
    hello = _call(_visitor(app), "chat.hello", {})
    fields = hello["settings"]["fields"]
    assert [f["name"] for f in fields] == ["custom.order_no", "custom.product",
                                           "customer_custom.tier"]  # fmt: skip
    assert fields[0] == {"name": "custom.order_no", "group": "custom", "key": "order_no",
                         "type": "text", "label": "Order number", "required": True,
                         "options": []}  # fmt: skip
    assert fields[1]["options"] == [{"value": "phone", "label": "Phone"},
                                    {"value": "laptop", "label": "Laptop"}]  # fmt: skip
    bengali = _call(_visitor(app, "bn"), "chat.hello", {})["settings"]["fields"]
    assert [f["label"] for f in bengali] == ["অর্ডার নম্বর", "পণ্য", "গ্রাহক স্তর"]
    assert bengali[1]["options"][1] == {"value": "laptop", "label": "ল্যাপটপ"}


@pytest.mark.usefixtures("online")
def test_bad_answers_are_refused_beside_the_field_and_nothing_is_stored(
    app: Flask, session: Session
) -> None:
    sio = _visitor(app)
    _call(sio, "chat.hello", {})
    missing = _start(sio, custom={"product": "tablet"})
    assert missing == {
        "ok": False,
        "code": "invalid",
        "field": "custom.order_no",
        "error": "Order number is required. tablet is not an option of Product.",
        "fields": {
            "custom.order_no": "Order number is required.",
            "custom.product": "tablet is not an option of Product.",
        },
    }
    not_an_object = _start(sio, custom="A-1")
    assert not_an_object["code"] == "invalid" and not_an_object["field"] == "custom"
    assert _tickets(session) == 0

    bengali = _visitor(app, "bn")
    _call(bengali, "chat.hello", {})
    refused = _start(bengali, custom={"order_no": "A-1"}, customer_custom={"tier": "platinum"})
    message = bn("%(value)s is not an option of %(field)s.") % {"value": "platinum",
                                                                 "field": "গ্রাহক স্তর"}  # fmt: skip
    assert refused["fields"] == {"customer_custom.tier": message}
    assert refused["field"] == "customer_custom.tier"
    assert _tickets(session) == 0


@pytest.mark.usefixtures("online")
def test_good_answers_land_on_the_chats_ticket_and_customer(app: Flask, session: Session) -> None:
    sio = _visitor(app)
    _call(sio, "chat.hello", {})
    started = _start(
        sio,
        email="rina@example.com",
        # A forged agent-only key and one the pre-chat form does not ask: ignored.
        custom={"order_no": "  A-1234 ", "product": "laptop", "refund_ok": True,
                "portal_only": "x"},
        customer_custom={"tier": "gold"},
    )  # fmt: skip
    assert started["ok"], started
    session.rollback()
    ticket = session.get(Ticket, started["chat"]["ticket_id"])
    assert ticket is not None
    assert ticket.custom == {"order_no": "A-1234", "product": "laptop"}
    assert ticket.customer.custom == {"tier": "gold"}
