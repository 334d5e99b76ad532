"""The one inbound path: customers, threading, dedupe, reopening, attachments, participants."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.inbound import InboundAttachment, InboundMessage
from helpdesk.models import (
    Agent,
    Attachment,
    Customer,
    Message,
    MessageKind,
    Ticket,
    TicketStatus,
    ticket_participants,
)
from helpdesk.services import tickets
from helpdesk.services.attachments import path_for
from helpdesk.services.errors import NotFound
from helpdesk.services.inbound import Received
from tests.conftest import MakeTicket


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_first_message_opens_a_ticket_for_a_new_customer(
    session: Session, make_ticket: MakeTicket
) -> None:
    r = make_ticket(
        sender="Rahim.Uddin@Example.com", sender_name="রহিম উদ্দিন", subject="পাসওয়ার্ড রিসেট"
    )
    assert r.created
    assert r.ticket.subject == "পাসওয়ার্ড রিসেট"
    assert r.ticket.customer.email == "rahim.uddin@example.com"
    assert r.ticket.customer.name == "রহিম উদ্দিন"
    assert r.ticket.status == TicketStatus.NEW
    assert r.message.kind == MessageKind.EMAIL


def test_same_person_on_every_channel_is_one_customer(
    session: Session, make_ticket: MakeTicket
) -> None:
    make_ticket(sender="nadia@example.com", channel="email")
    make_ticket(sender="NADIA@example.com", channel="portal")
    assert count(session, Customer) == 1
    assert count(session, Ticket) == 2


def test_the_same_mail_twice_is_stored_once(session: Session, make_ticket: MakeTicket) -> None:
    first = make_ticket(message_id="<dup@example.com>")
    again = make_ticket(message_id="dup@example.com")
    assert again.duplicate and again.message.id == first.message.id
    assert count(session, Message) == 1


def test_reply_threads_by_in_reply_to_and_references(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    t = make_ticket(message_id="a@customer.example").ticket
    out = tickets.reply_to_ticket(session, t, agent, "Answer")
    session.commit()
    # The customer's client changed the subject and only kept References (no In-Reply-To).
    r = make_ticket(subject="something else entirely", references=["x@elsewhere", out.message_id])
    assert not r.created and r.ticket.id == t.id


def test_our_signed_message_id_threads_even_when_not_stored(
    session: Session, make_ticket: MakeTicket
) -> None:
    from helpdesk.services.conversations import make_message_id

    t = make_ticket().ticket
    r = make_ticket(subject="Re: hello", in_reply_to=make_message_id(t.id))
    assert r.ticket.id == t.id
    forged = make_message_id(t.id).replace(f"hd.{t.id}.", f"hd.{t.id + 1}.")
    r2 = make_ticket(subject="Re: hello", in_reply_to=forged)
    assert r2.created


def test_subject_token_only_for_participants(session: Session, make_ticket: MakeTicket) -> None:
    t = make_ticket(sender="owner@example.com").ticket
    same = make_ticket(sender="owner@example.com", subject=f"Re: [#{t.number}] help")
    assert same.ticket.id == t.id
    stranger = make_ticket(sender="stranger@example.com", subject=f"Re: [#{t.number}] help")
    assert stranger.created and stranger.ticket.id != t.id


def test_plain_re_subject_from_someone_else_opens_a_new_ticket(
    session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket(sender="a@example.com", subject="Refund").ticket
    r = make_ticket(sender="b@example.com", subject="Re: Refund")
    assert r.created and r.ticket.id != t.id


def test_customer_reply_reopens_but_automatic_mail_does_not(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    t = make_ticket(message_id="m1@c").ticket
    tickets.set_status(session, t, TicketStatus.RESOLVED, agent)
    session.commit()
    make_ticket(in_reply_to="m1@c", message_id="ooo@c", auto_submitted=True)
    assert t.status == TicketStatus.RESOLVED
    auto = session.scalars(select(Message).where(Message.message_id == "ooo@c")).one()
    assert auto.kind == MessageKind.SYSTEM
    make_ticket(in_reply_to="m1@c", message_id="m2@c")
    assert t.status == TicketStatus.OPEN


def test_adapter_named_ticket_must_belong_to_the_sender(
    session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket(sender="owner@example.com", channel="portal").ticket
    ok = make_ticket(sender="owner@example.com", channel="portal", ticket_id=t.id)
    assert ok.ticket.id == t.id
    with pytest.raises(NotFound):
        make_ticket(sender="intruder@example.com", channel="portal", ticket_id=t.id)


def test_attachments_are_stored_by_hash_and_inline_images_rewritten(
    session: Session, make_ticket: MakeTicket
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    r = make_ticket(
        text="see image",
        html='<p>Look: <img src="cid:logo@x"></p>',
        attachments=[
            InboundAttachment("logo.png", "image/png", png, content_id="<logo@x>", inline=True),
            InboundAttachment("report.csv", "text/csv", b"a,b\n1,2\n"),
            InboundAttachment("copy.png", "image/png", png),
        ],
    )
    atts = session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [a.filename for a in atts] == ["logo.png", "report.csv", "copy.png"]
    assert atts[0].sha256 == atts[2].sha256  # stored once on disk
    assert path_for(atts[1].sha256).read_bytes() == b"a,b\n1,2\n"
    assert f'src="/attachments/{atts[0].id}/logo.png"' in (r.message.body_html or "")


def test_cc_addresses_become_participants(session: Session, make_ticket: MakeTicket) -> None:
    t = make_ticket(cc=["Boss@example.com", "not an address"]).ticket
    rows = session.execute(select(ticket_participants)).all()
    assert len(rows) == 1
    boss = session.get(Customer, rows[0].customer_id)
    assert boss is not None and boss.email == "boss@example.com"
    # The participant can now continue the thread with the subject token.
    r = make_ticket(sender="boss@example.com", subject=f"[#{t.number}] update")
    assert r.ticket.id == t.id


def test_empty_subject_falls_back_to_the_first_words(
    session: Session, make_ticket: MakeTicket
) -> None:
    r = make_ticket(
        subject="", text="হ্যালো, আমার ডেলিভারি কবে আসবে?", channel="chat", sender="visitor-1"
    )
    assert r.ticket.subject == "হ্যালো, আমার ডেলিভারি কবে আসবে?"


def test_the_post_receive_chain_runs_registered_steps_in_order_after_each_stored_message(
    session: Session, make_ticket: MakeTicket
) -> None:
    from helpdesk.services import tags
    from helpdesk.services.agents import create_team
    from helpdesk.services.inbound import (
        PostReceiveStep,
        post_receive_steps,
        register_post_receive,
    )

    # The channels' own steps are registered by create_app around the core's team step.
    assert post_receive_steps()[:3] == ["email.bounce", "team", "email.acknowledge"]
    team = create_team(session, "VIP desk")
    session.commit()
    seen: list[tuple[str, int | None]] = []

    def vip(s: Session, msg: InboundMessage, received: Received) -> None:
        # Runs after the team step (order 10): the ticket is already in its team.
        seen.append((msg.sender_address, received.ticket.team_id))
        tags.add_tags(s, received.ticket, ["vip"], None)

    register_post_receive(
        PostReceiveStep("test.vip", 20, lambda m: m.sender_address.endswith("@vip.example"), vip)
    )
    try:
        got = make_ticket(sender="boss@vip.example", team_id=team.id)
        plain = make_ticket(sender="someone@example.com", team_id=team.id)
        again = make_ticket(sender="boss@vip.example", message_id="same@vip.example")
        duplicate = make_ticket(sender="boss@vip.example", message_id="same@vip.example")
    finally:
        from helpdesk.services import inbound

        inbound._chain[:] = [s for s in inbound._chain if s.name != "test.vip"]
    assert duplicate.duplicate
    assert seen == [("boss@vip.example", team.id), ("boss@vip.example", None)]
    assert [t.name for t in got.ticket.tags] == ["vip"] and got.ticket.team_id == team.id
    assert plain.ticket.tags == [] and plain.ticket.team_id == team.id
    assert [t.name for t in again.ticket.tags] == ["vip"]
