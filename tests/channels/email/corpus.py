"""A mail corpus that looks like a real support inbox, not like what the ingest code expects.

Made for the backlog test and ``bench/email_ingest.py``, deliberately with the features that
broke fast paths before: a person Cc'd in one mail who then writes their own (in the same fetch
batch), the same address in another case, a web form that sends From a no-reply address with
the customer in Reply-To, a reply from a person's second address, mail to several recipients,
forwarded mail (inline and as ``message/rfc822``), HTML newsletters with mailing-list headers,
out-of-office replies, and attachments of many types. Subjects, names and bodies are English or
Bengali. Seeded: the same ``seed`` gives the same bytes.

:func:`make_corpus` returns the raw mails and a :class:`CorpusFacts` with what a correct
ingest must end with (how many distinct Message-IDs, which are replies), so a test asserts on
facts about the mail rather than on the code's own output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

LATIN_FIRST = ["Jane", "Omar", "Priya", "Lucas", "Mei", "Fatima", "John", "Sara", "Arif", "Nadia"]
LATIN_LAST = ["Doe", "Khan", "Rahman", "Silva", "Chen", "Ahmed", "Smith", "Hossain", "Ali", "Roy"]
BN_NAMES = ["রহিম উদ্দিন", "করিম হাসান", "সাবরিনা আক্তার", "তানভীর আহমেদ", "নুসরাত জাহান", "মাহমুদ"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "shop.com.bd", "acme-corp.example", "dhaka.net"]

EN_SUBJECTS = [
    "Order {n} has not arrived",
    "Charged twice for invoice {n}",
    "App crashes when opening settings",
    "How do I change my email address?",
    "Refund request for order {n}",
    "Cannot log in since yesterday",
    "Question about your business hours",
]
BN_SUBJECTS = [
    "অর্ডার {n} এখনও আসেনি",
    "একই চালান {n} এর জন্য দুবার টাকা কাটা হয়েছে",
    "অ্যাপের সেটিংস খুললেই বন্ধ হয়ে যায়",
    "আমার অ্যাকাউন্টের ইমেইল ঠিকানা কীভাবে বদলাব?",
    "অর্ডার {n} এর টাকা ফেরত চাই",
]
EN_BODIES = [
    "Hello,\n\nMy order has not arrived yet. Could you check the tracking number?\n\n{name}",
    "Hi team,\n\nI was charged twice for the same invoice. Please refund one payment.\n\n{name}",
    "Hello,\n\nThe app crashes when I open settings on Android 14. Log attached.\n\nBest,\n{name}",
    "Dear support,\n\nI cannot sign in since yesterday; the reset link never arrives.\n\n{name}",
]
BN_BODIES = [
    "আসসালামু আলাইকুম,\n\nআমার অর্ডার এখনও আসেনি। অনুগ্রহ করে ট্র্যাকিং নম্বরটি দেখবেন?\n\nধন্যবাদ,\n{name}",
    "হ্যালো,\n\nএকই চালানের জন্য আমার কাছ থেকে দুবার টাকা কাটা হয়েছে। একটি ফেরত দিন।\n\n{name}",
    "শুভেচ্ছা,\n\nঅ্যাপের সেটিংস খুললেই অ্যাপটি বন্ধ হয়ে যায়। লগ সংযুক্ত করলাম।\n\n{name}",
]
ATTACHMENTS = [
    ("screenshot.png", "image", "png"),
    ("photo.jpg", "image", "jpeg"),
    ("invoice.pdf", "application", "pdf"),
    ("চালান.pdf", "application", "pdf"),
    ("report.docx", "application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("export.csv", "text", "csv"),
    ("logs.zip", "application", "zip"),
    ("meeting.ics", "text", "calendar"),
    ("error.log", "text", "plain"),
]


@dataclass
class Person:
    name: str
    addresses: list[str]  # the first is the usual one
    bengali: bool


@dataclass
class CorpusFacts:
    """What the mail says, independent of the code under test."""

    message_ids: list[str] = field(default_factory=list)  # every mail's, in order (no brackets)
    replies: set[str] = field(default_factory=set)  # Message-IDs of mail answering earlier mail
    # Automatic mail of no conversation (newsletters, out-of-office replies to mail we never
    # saw): held for the admin, never a ticket message.
    automatic: set[str] = field(default_factory=set)
    kinds: dict[str, int] = field(default_factory=dict)  # feature -> how many mails have it

    @property
    def stored_ids(self) -> list[str]:
        """The Message-IDs that must end up as messages, each once, in mail order."""
        return [m for m in self.message_ids if m not in self.automatic]

    def count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


def _people(rnd: random.Random, n: int) -> list[Person]:
    people: list[Person] = []
    for i in range(n):
        bengali = rnd.random() < 0.4
        first, last = rnd.choice(LATIN_FIRST), rnd.choice(LATIN_LAST)
        name = rnd.choice(BN_NAMES) if bengali else f"{first} {last}"
        local = f"{first}.{last}{i}".lower()
        addresses = [f"{local}@{rnd.choice(DOMAINS)}"]
        if rnd.random() < 0.15:  # a work and a personal address
            addresses.append(f"{first[0]}{last}{i}@{rnd.choice(DOMAINS)}".lower())
        people.append(Person(name, addresses, bengali))
    return people


def make_corpus(
    n: int, seed: int = 11, support: str = "support@helpdesk.test"
) -> tuple[list[bytes], CorpusFacts]:
    """``n`` mails of a mixed support inbox (see the module's docstring)."""
    rnd = random.Random(seed)
    people = _people(rnd, max(8, n // 3))
    facts = CorpusFacts()
    mails: list[bytes] = []
    sent: list[tuple[str, Person, str]] = []  # (message-id, author, subject) for replies
    cc_pending: list[Person] = []  # people Cc'd before who will write themselves, soon
    when = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    for i in range(n):
        when += timedelta(seconds=rnd.randrange(20, 400))
        msgid = f"{i}.{rnd.getrandbits(40):x}@{rnd.choice(DOMAINS)}"
        mail = EmailMessage()
        roll = rnd.random()
        if cc_pending and rnd.random() < 0.5:
            # Someone Cc'd a few mails ago writes on their own: the batch-identity case.
            author = cc_pending.pop(0)
            facts.count("cc_then_from")
        else:
            author = rnd.choice(people)
        address = author.addresses[0]
        if len(author.addresses) > 1 and rnd.random() < 0.3:
            address = author.addresses[1]
            facts.count("second_address")
        if rnd.random() < 0.08:  # the same address, other case (Outlook, phones)
            local, _, domain = address.partition("@")
            address = f"{local.title()}@{domain.upper()}"
            facts.count("mixed_case")
        subject_pool = BN_SUBJECTS if author.bengali else EN_SUBJECTS
        body_pool = BN_BODIES if author.bengali else EN_BODIES
        subject = rnd.choice(subject_pool).format(n=1000 + i)
        body = rnd.choice(body_pool).format(name=author.name)
        kind = "new"
        if sent and roll < 0.3:
            parent_id, parent_author, parent_subject = rnd.choice(sent[-200:])
            kind = "reply"
            subject = f"Re: {parent_subject}"
            mail["In-Reply-To"] = f"<{parent_id}>"
            mail["References"] = f"<{parent_id}>"
            if rnd.random() < 0.7:
                author = parent_author
                address = author.addresses[-1] if rnd.random() < 0.2 else author.addresses[0]
            body += "\n\nOn Mon, " + parent_author.name + " wrote:\n> " + rnd.choice(EN_BODIES)[:80]
            facts.replies.add(msgid)
        elif roll < 0.36:
            kind = "forward"
            subject = f"Fwd: {subject}"
            body = "Please see the mail below.\n\n---------- Forwarded message ---------\n" + (
                f"From: {rnd.choice(people).name} <{rnd.choice(people).addresses[0]}>\n"
                f"Subject: {subject[5:]}\n\n{rnd.choice(body_pool).format(name='')}"
            )
        elif roll < 0.42:
            kind = "newsletter"
        elif roll < 0.45:
            kind = "out_of_office"
        facts.count(kind)

        mail["From"] = f"{author.name} <{address}>"
        to = [support]
        if rnd.random() < 0.15:
            to.append(rnd.choice(people).addresses[0])
            facts.count("several_to")
        mail["To"] = ", ".join(to)
        if kind in ("new", "reply") and rnd.random() < 0.25:
            cced = rnd.sample(people, rnd.randrange(1, 4))
            mail["Cc"] = ", ".join(f"{p.name} <{p.addresses[0]}>" for p in cced)
            cc_pending.extend(p for p in cced if p is not author)
            facts.count("cc")
        if kind == "new" and rnd.random() < 0.07:
            # A web form: From a no-reply address, the customer in Reply-To.
            mail.replace_header("From", f"Shop contact form <no-reply@{rnd.choice(DOMAINS)}>")
            mail["Reply-To"] = f"{author.name} <{author.addresses[0]}>"
            facts.count("reply_to")
        mail["Subject"] = subject
        mail["Date"] = format_datetime(when)
        mail["Message-ID"] = f"<{msgid}>"
        if kind == "newsletter":
            mail.replace_header("From", f"Deals Weekly <news@{rnd.choice(DOMAINS)}>")
            mail["List-Id"] = "Deals Weekly <deals.lists.example>"
            mail["List-Unsubscribe"] = "<mailto:unsubscribe@lists.example>"
            mail["Precedence"] = "bulk"
            mail.set_content("This week's deals. View in a browser.")
            rows = "".join(f"<tr><td>Deal {k}</td><td>{k * 10}% off</td></tr>" for k in range(20))
            mail.add_alternative(
                f"<html><body><h1>Deals</h1><table>{rows}</table>"
                '<img src="https://img.example/pixel.gif"></body></html>',
                subtype="html",
            )
        elif kind == "out_of_office":
            mail["Auto-Submitted"] = "auto-replied"
            mail["X-Autoreply"] = "yes"
            mail.replace_header("Subject", f"Automatic reply: {subject}")
            mail.set_content("I am out of the office until Monday and will reply then.")
        else:
            mail.set_content(body)
            if rnd.random() < 0.35:
                html = "".join(f"<p>{line}</p>" for line in body.split("\n") if line)
                mail.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
            if kind == "forward" and rnd.random() < 0.5:
                inner = EmailMessage()
                inner["From"] = f"Vendor <billing@{rnd.choice(DOMAINS)}>"
                inner["Subject"] = "Your invoice"
                inner["Message-ID"] = f"<inner.{msgid}>"
                inner.set_content("Invoice attached, due in 14 days.")
                mail.add_attachment(inner)
                facts.count("forward_rfc822")
            for _ in range(rnd.choice([0, 0, 0, 0, 1, 1, 2])):
                filename, maintype, subtype = rnd.choice(ATTACHMENTS)
                data = rnd.randbytes(rnd.randrange(500, 40_000))
                mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
                facts.count("attachment")
        if kind in ("new", "reply", "forward"):
            sent.append((msgid, author, subject if kind != "reply" else subject[4:]))
        else:
            facts.automatic.add(msgid)
        facts.message_ids.append(msgid)
        mails.append(bytes(mail))
    return mails, facts
