"""Demo data: a small support team with English and Bengali conversations on every channel.

Everything is created through the real services, so the demo is a state the product can reach.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.inbound import InboundMessage
from helpdesk.models import Agent, AgentRole, Customer, Priority, Ticket, TicketStatus
from helpdesk.services import custom_fields, organizations, reminders, tasks, tickets
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.customers import update_customer
from helpdesk.services.inbound import receive
from helpdesk.services.tags import set_tags

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo login, printed by `make run`
DEMO_ADMIN = "admin@example.com"
DEMO_AGENT = "agent@example.com"
# The demo's instance time zone (`make run` sets HELPDESK_TIMEZONE to it) and its agents' zone.
DEMO_TIMEZONE = "Asia/Dhaka"

# (channel, sender, name, language, subject, first message, agent reply or None, status, prio, tags)
CONVERSATIONS: list[tuple[str, str, str, str, str, str, str | None, str, int, list[str]]] = [
    (
        "email", "rahim.uddin@example.com", "রহিম উদ্দিন", "bn",
        "পাসওয়ার্ড রিসেট করতে পারছি না",
        "আমি গতকাল থেকে আমার অ্যাকাউন্টে ঢুকতে পারছি না। পাসওয়ার্ড রিসেটের ইমেইল আসছে না। দয়া করে সাহায্য করুন।",
        "রহিম ভাই, আপনার অ্যাকাউন্টের রিসেট লিঙ্কটি আবার পাঠানো হয়েছে। স্প্যাম ফোল্ডারটিও দেখে নিন।",
        "pending", Priority.HIGH, ["login", "password"],
    ),
    (
        "email", "sarah.jones@example.com", "Sarah Jones", "en",
        "Invoice #4471 charged twice",
        "Hello, my card was charged twice for invoice #4471 this month. Could you refund the duplicate charge?",
        None, "new", Priority.URGENT, ["billing", "refund"],
    ),
    (
        "portal", "fatema.khatun@example.com", "ফাতেমা খাতুন", "bn",
        "বিকাশে পেমেন্ট করার পর অর্ডার কনফার্ম হয়নি",
        "আমি বিকাশে ১২৫০ টাকা পেমেন্ট করেছি, কিন্তু অর্ডারটি এখনও 'পেন্ডিং' দেখাচ্ছে। ট্রানজেকশন আইডি: 8N7A6K2Q।",
        None, "new", Priority.NORMAL, ["bkash", "payment"],
    ),
    (
        "chat", "visitor-7f3a9c", "Michael Chen", "en",
        "",
        "Hi! Do you ship to Chittagong, and how long does delivery take?",
        "Hi Michael, yes we do: delivery to Chittagong takes 2–3 working days.",
        "resolved", Priority.LOW, ["shipping"],
    ),
    (
        "portal", "nadia.islam@example.com", "Nadia Islam", "en",
        "How do I add a second user to our account?",
        "We are a team of three at Islam Traders. How can my colleagues get their own logins?",
        "Hi Nadia, go to Settings → Team and click “Invite”. Each colleague gets an email to set a password.",
        "open", Priority.NORMAL, ["account"],
    ),
    (
        "chat", "visitor-b21e04", "করিম হোসেন", "bn",
        "",
        "হ্যালো, আমার ডেলিভারি কবে আসবে? অর্ডার নম্বর ৫৫৩২।",
        None, "new", Priority.NORMAL, ["delivery"],
    ),
    (
        "email", "priya.das@example.com", "Priya Das", "en",
        "Feature request: export tickets to CSV",
        "It would help our monthly reporting if we could export all tickets to CSV. Is that planned?",
        "Thanks Priya, I've passed this to our product team and will update you here.",
        "pending", Priority.LOW, ["feature-request"],
    ),
    (
        "email", "tanjila.akter@example.com", "তানজিলা আক্তার", "bn",
        "রিফান্ড কবে পাব?",
        "গত সপ্তাহে আমি একটি পণ্য ফেরত দিয়েছি। রিফান্ড কত দিনের মধ্যে আমার অ্যাকাউন্টে আসবে?",
        "আপনার রিফান্ড প্রক্রিয়া শুরু হয়েছে, ৫–৭ কার্যদিবসের মধ্যে টাকা পৌঁছে যাবে।",
        "resolved", Priority.NORMAL, ["refund", "billing"],
    ),
]  # fmt: skip

# Custom field answers by conversation: what the customer gave on the portal's contact form or
# the chat's pre-chat form, and what an agent recorded (set before the status changes).
FORM_ANSWERS: dict[int, dict[str, str]] = {
    2: {"product": "phone"},
    4: {"product": "subscription"},
    5: {"order_number": "5532"},
}
AGENT_VALUES: dict[int, dict[str, object]] = {
    1: {"product": "subscription"},
    7: {"product": "laptop", "order_number": "4471-B", "refund_approved": True},
}
CUSTOMER_TIERS = {0: "standard", 1: "platinum", 4: "gold"}


def _demo_fields(session: Session, admin: Agent) -> None:
    """A few custom fields, so the ticket sidebar, the customer and organization pages, the
    portal's contact form and the chat's pre-chat form show them."""
    define = custom_fields.define_field
    define(
        session,
        admin,
        object_type="ticket",
        key="product",
        type="dropdown",
        label_en="Product",
        label_bn="পণ্য",
        options=[
            "phone | Mobile phone | মোবাইল ফোন",
            "laptop | Laptop | ল্যাপটপ",
            "accessories | Accessories | এক্সেসরিজ",
            "subscription | Subscription | সাবস্ক্রিপশন",
        ],
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="order_number",
        type="text",
        label_en="Order number",
        label_bn="অর্ডার নম্বর",
        visible_to_customers=True,
        on_prechat_form=True,
    )
    # Agent-only, and not required to resolve: most demo tickets are no refund at all.
    define(
        session,
        admin,
        object_type="ticket",
        key="refund_approved",
        type="checkbox",
        label_en="Refund approved",
        label_bn="রিফান্ড অনুমোদিত",
    )
    define(
        session,
        admin,
        object_type="customer",
        key="tier",
        type="dropdown",
        label_en="Customer tier",
        label_bn="গ্রাহকের স্তর",
        options=[
            "standard | Standard | সাধারণ",
            "gold | Gold | গোল্ড",
            "platinum | Platinum | প্লাটিনাম",
        ],
    )
    define(
        session,
        admin,
        object_type="organization",
        key="contract_renewal",
        type="date",
        label_en="Contract renewal",
        label_bn="চুক্তি নবায়ন",
    )


def _demo_organization(session: Session, admin: Agent, customer: Customer) -> None:
    org = organizations.create_organization(
        session, "Islam Traders", notes="A team of three; ask for Nadia.", actor=admin
    )
    renewal = (utcnow() + timedelta(days=90)).date().isoformat()
    custom_fields.set_values(session, org, {"contract_renewal": renewal}, admin)
    update_customer(session, customer, organization=org.name, actor=admin)


def _demo_automation(session: Session, admin: Agent) -> None:
    """The default calendar (Bangladesh's working week and holidays), an SLA policy on it and a
    time rule, so the queue counts down to breaches and Admin shows what they look like."""
    from helpdesk.services import business_hours, rules, sla

    business_hours.default_calendar(session)
    sla.create_policy(
        session,
        admin,
        name="Standard",
        targets={
            "urgent": {"first_response_minutes": 60, "resolution_minutes": 240},
            "high": {"first_response_minutes": 120, "resolution_minutes": 480},
            "normal": {
                "first_response_minutes": 240,
                "next_response_minutes": 480,
                "resolution_minutes": 1440,
            },
            "low": {"first_response_minutes": 480, "resolution_minutes": 2880},
        },
    )
    rules.create_rule(
        session,
        admin,
        name="Pending 3 days: remind the customer",
        kind="time",
        after_hours=72,
        conditions_=[{"field": "status", "op": "is", "value": "pending"}],
        actions=[
            {
                "type": "send_email",
                "value": {
                    "to": "customer",
                    "subject": {
                        "en": "Do you still need help with {{ ticket.number }}?",
                        "bn": "{{ ticket.number }} নিয়ে এখনো কি সাহায্য দরকার?",
                    },
                    "body": {
                        "en": "We are waiting for your answer. Reply to this mail and we will "
                        "pick it up.",
                        "bn": "আমরা আপনার উত্তরের অপেক্ষায় আছি। এই মেইলের উত্তর দিলেই আমরা আবার কাজ শুরু করব।",
                    },
                },
            },
            {"type": "add_note", "value": "Reminder sent: pending for 3 days."},
        ],
    )
    session.flush()
    sla.forget()  # the tickets below are opened in this transaction: they get the policy


def load_demo(session: Session) -> dict[str, int]:
    admin = create_agent(session, DEMO_ADMIN, "Ayesha Rahman", DEMO_PASSWORD, AgentRole.ADMIN)
    agent = create_agent(session, DEMO_AGENT, "Tanvir Hasan", DEMO_PASSWORD, AgentRole.AGENT)
    bn_agent = create_agent(
        session, "nusrat@example.com", "নুসরাত জাহান", DEMO_PASSWORD, AgentRole.AGENT, "bn"
    )
    for person in (admin, agent, bn_agent):
        person.timezone = DEMO_TIMEZONE  # the demo team works in Dhaka
    support = create_team(session, "Support", [admin, agent, bn_agent])
    billing = create_team(session, "Billing", [admin, agent])
    agents = [agent, bn_agent, admin]
    _demo_fields(session, admin)
    _demo_automation(session, admin)

    start = utcnow() - timedelta(hours=len(CONVERSATIONS) * 3)
    customers: set[int] = set()
    opened = []
    for i, (channel, sender, name, lang, subject, first, answer, status, prio, tags) in enumerate(
        CONVERSATIONS
    ):
        received = receive(
            session,
            InboundMessage(
                channel_kind=channel,  # type: ignore[arg-type]
                identity_kind="chat" if channel == "chat" else "email",
                sender_address=sender,
                sender_name=name,
                subject=subject,
                text=first,
                language=lang,
                received_at=start + timedelta(hours=3 * i),
                custom=FORM_ANSWERS.get(i),
            ),
        )
        ticket = received.ticket
        customers.add(ticket.customer_id)
        if i in CUSTOMER_TIERS:
            tier = {"tier": CUSTOMER_TIERS[i]}
            custom_fields.set_values(session, ticket.customer, tier, admin)
        team = billing if {"billing", "refund", "bkash", "payment"} & set(tags) else support
        tickets.set_team(session, ticket, team, None)
        tickets.set_priority(session, ticket, prio, None)
        set_tags(session, ticket, tags, None)
        helper = agents[i % len(agents)]
        if answer is not None:
            tickets.assign_ticket(session, ticket, helper, helper)
            tickets.reply_to_ticket(session, ticket, helper, answer)
            if i % 3 == 0:
                tickets.add_note(
                    session,
                    ticket,
                    helper,
                    "গ্রাহক আগেও একই সমস্যা জানিয়েছিলেন।"
                    if lang == "bn"
                    else "Customer reported this before; check the old ticket.",
                )
        if i in AGENT_VALUES:
            custom_fields.set_values(session, ticket, AGENT_VALUES[i], helper)
        tickets.set_status(session, ticket, TicketStatus(status), helper)
        opened.append(ticket)
    _demo_organization(session, admin, opened[4].customer)
    made = _demo_tasks(session, agent, bn_agent, opened)
    return {
        "agents": len(agents),
        "customers": len(customers),
        "tickets": len(CONVERSATIONS),
        "tasks": made,
    }


def _demo_tasks(session: Session, agent: Agent, bn_agent: Agent, opened: list[Ticket]) -> int:
    """A few tasks on "My tasks" (overdue, today, upcoming, one weekly) and a follow-up date on
    a pending ticket. No reminders: a fresh installation has no mail server to send them."""
    now = utcnow()
    sarah, fatema, priya = opened[1], opened[2], opened[6]
    made = [
        tasks.create_task(
            session,
            agent,
            title="Call Sarah about the double charge",
            assignee=agent,
            due_at=now + timedelta(hours=2),
            ticket=sarah,
            customer=sarah.customer,
        ),
        tasks.create_task(
            session,
            agent,
            title="Ask finance about the bKash payment 8N7A6K2Q",
            assignee=agent,
            due_at=now - timedelta(hours=20),
            ticket=fatema,
        ),
        tasks.create_task(
            session,
            agent,
            title="Review the pending tickets",
            assignee=agent,
            due_at=now + timedelta(days=1),
            recurrence="weekly",
        ),
        tasks.create_task(
            session,
            bn_agent,
            title="রহিম ভাইকে ফোন করে পাসওয়ার্ডের বিষয়টি নিশ্চিত করা",
            assignee=bn_agent,
            due_at=now + timedelta(hours=5),
            ticket=opened[0],
        ),
    ]
    reminders.set_follow_up(session, priya, now + timedelta(days=7), agent)
    return len(made)
