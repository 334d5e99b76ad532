"""Seed a helpdesk SQLite database with N tickets for benchmarks (shared by bench/*.py).

The small tables (agents, teams, the first customers) go through the real services so their
rows look like the product's own; tickets, messages, tags and the bulk of customers are
inserted with SQLAlchemy Core ``insert()`` executemany on the model tables, so every value
passes through the column types (tz-aware UTC datetimes, enums, JSON) exactly as the ORM's
would. Indexes of the big tables are dropped during the load and built once afterwards.

The result is cached under ``bench/results/`` keyed by N; ``seed_database(..., reseed=True)``
rebuilds it. Everything is drawn from a seeded RNG, so two seeds of the same N are identical.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Index, Table, create_engine, event, insert, text, update
from sqlalchemy.orm import Session
from tqdm import tqdm

# Every table on Base.metadata, the channels' and the KB's too: a cache seeded before a column
# was added to one of them gains it like the core's.
import channels.chat.models
import channels.email.models
import channels.portal.models  # noqa: F401
import helpdesk.models  # noqa: F401  (registers every table on Base.metadata)
import kb.models  # noqa: F401
from helpdesk.db import Base
from helpdesk.models import (
    Agent,
    AgentRole,
    ChannelKind,
    DeliveryStatus,
    Direction,
    IdentityKind,
    MessageKind,
    TicketStatus,
    ticket_tags,
)
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.customers import resolve_customer

RESULTS = Path(__file__).resolve().parent / "results"

# Every timestamp is relative to this instant so a cached DB and a fresh one agree.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SPAN = timedelta(days=730)

BENCH_AGENT_EMAIL = "bench-agent-01@helpdesk.invalid"
BENCH_PASSWORD = "bench-password-1"
N_AGENTS = 50
TEAMS = ("Billing", "Technical", "Shipping", "Accounts", "বাংলা সহায়তা")
# Customers created through resolve_customer; the rest are bulk-inserted in the same shape.
SERVICE_CUSTOMERS = 500
BATCH = 20_000

STATUS_WEIGHTS = {
    TicketStatus.NEW: 15,
    TicketStatus.OPEN: 30,
    TicketStatus.PENDING: 15,
    TicketStatus.RESOLVED: 28,
    TicketStatus.CLOSED: 12,
}
CHANNEL_WEIGHTS = {ChannelKind.EMAIL: 60, ChannelKind.PORTAL: 25, ChannelKind.CHAT: 15}
PRIORITY_WEIGHTS = {1: 15, 2: 60, 3: 20, 4: 5}
MESSAGE_COUNT_WEIGHTS = {1: 45, 2: 28, 3: 13, 4: 7, 5: 4, 8: 3}
TAG_COUNT_WEIGHTS = {0: 40, 1: 35, 2: 18, 3: 7}

# 30 tags: Zipf-like popularity ("billing" on ~1 in 4 tickets) with a long tail of rare ones.
TAG_NAMES = (
    "billing", "login", "shipping", "refund", "bug", "password", "invoice", "account",
    "mobile-app", "feature-request", "delivery-delay", "cancellation", "upgrade", "android",
    "ios", "api", "feedback", "damaged", "warranty", "integration", "downgrade", "onboarding",
    "spam", "vip", "outage", "escalated", "bn", "security", "gdpr", "legal-hold",
)  # fmt: skip
TAG_WEIGHTS = [1 / (k + 1) ** 1.3 for k in range(len(TAG_NAMES) - 3)] + [0.004, 0.002, 0.0005]
POPULAR_TAG = TAG_NAMES[0]
MEDIUM_TAG = TAG_NAMES[12]
UNCOMMON_TAG = TAG_NAMES[24]
RARE_TAG = TAG_NAMES[-1]

SUBJECTS_EN = (
    "Order {k} has not arrived",
    "Cannot reset my password",
    "Charged twice for invoice {k}",
    "App crashes when I open settings",
    "How do I change my billing address?",
    "Refund for order {k}",
    "Account locked after too many attempts",
    "Feature request: export to CSV",
    "Delivery is late again",
    "Question about my subscription",
)
SUBJECTS_BN = (
    "আমার অর্ডার {k} এখনও পৌঁছায়নি",
    "পাসওয়ার্ড রিসেট করতে পারছি না",
    "ইনভয়েস {k} এর জন্য দুবার টাকা কাটা হয়েছে",
    "অ্যাপ খুললেই বন্ধ হয়ে যাচ্ছে",
    "অর্ডার {k} এর রিফান্ড কবে পাব?",
    "অ্যাকাউন্ট লক হয়ে গেছে",
)
BODIES_IN = (
    "Hello, I ordered last week and still have no tracking number. Can you check please?",
    "I tried the reset link three times and it says the token expired. Please help.",
    "My card statement shows two payments for the same invoice. I need one refunded.",
    "আমি গত সপ্তাহে অর্ডার করেছি কিন্তু এখনও কোনো খবর পাইনি। দয়া করে দেখবেন?",
    "Since the last update the app closes as soon as I tap Settings on my phone.",
)
BODIES_OUT = (
    "Thanks for writing in. I have checked your order and a replacement ships today.",
    "I have reset the login for you; the new link is valid for 24 hours.",
    "The duplicate charge is refunded; it shows on your statement in 3-5 working days.",
    "ধন্যবাদ। আপনার অর্ডারটি আজ পাঠানো হয়েছে, ট্র্যাকিং নম্বর ইমেইলে পাবেন।",
)
NOTES = ("Customer is on the annual plan.", "Escalated to engineering, see the bug tracker.")
FIRST_NAMES = ("Ava", "Rahim", "Maya", "Tanvir", "Lena", "Nusrat", "Omar", "Sofia", "Arif", "Eva")
LAST_NAMES = ("Khan", "Smith", "Rahman", "Garcia", "Chowdhury", "Müller", "Islam", "Brown")
BN_NAMES = ("রহিম উদ্দিন", "নুসরাত জাহান", "তানভীর আহমেদ", "সাবরিনা হক", "আরিফ হোসেন")


# Words for the free text in message bodies (ticket search needs a realistic vocabulary: a
# few very common words, a long tail of rare ones), drawn with Zipf-like frequencies.
VOCABULARY_EN = (
    "order", "account", "payment", "refund", "delivery", "password", "app", "card", "email",
    "phone", "update", "error", "login", "invoice", "subscription", "price", "address", "courier",
    "tracking", "package", "screen", "message", "bank", "transfer", "balance", "receipt", "store",
    "coupon", "discount", "return", "exchange", "size", "color", "warranty", "battery", "charger",
    "cable", "router", "wifi", "signal", "network", "speed", "download", "upload", "backup",
    "sync", "calendar", "contact", "notification", "camera", "photo", "video", "audio",
    "speaker", "microphone", "headphones", "keyboard", "mouse", "printer", "scanner", "monitor",
    "laptop", "tablet", "firmware", "driver", "license", "trial", "upgrade", "downgrade", "plan",
    "team", "seat", "admin", "permission", "role", "profile", "avatar", "username", "verification",
    "otp", "sms", "pin", "fingerprint", "face", "unlock", "locked", "blocked", "suspended",
    "deleted", "archived", "restored", "duplicate", "missing", "broken", "damaged", "late",
    "early", "wrong", "cancelled", "pending", "approved", "declined", "expired", "renewed",
    "voucher", "gift", "loyalty", "points", "cashback", "bkash", "nagad", "rocket", "visa",
    "mastercard", "amex", "paypal", "stripe", "checkout", "cart", "wishlist", "review", "rating",
    "complaint", "feedback", "survey", "manager", "supervisor", "escalation", "callback",
    "chatbot", "hotline", "branch", "warehouse", "dhaka", "chittagong", "sylhet", "khulna",
    "rajshahi", "barisal", "rangpur", "mymensingh", "gazipur", "narayanganj", "comilla",
    "invoice-copy", "vat", "tax", "customs", "import", "export", "pallet", "shipment", "parcel",
    "fragile", "insurance", "claim", "appointment", "schedule", "reschedule", "installation",
    "technician", "repair", "replacement", "spare", "serial", "imei", "model", "version",
    "android", "ios", "windows", "macos", "linux", "browser", "chrome", "firefox", "safari",
    "cookie", "cache", "session", "timeout", "crash", "freeze", "lag", "bug", "glitch", "typo",
    "translation", "bangla", "english", "font", "keyboard-layout", "dark-mode", "accessibility",
    "privacy", "gdpr", "consent", "unsubscribe", "newsletter", "spam", "phishing", "fraud",
    "chargeback", "dispute", "statement", "overdraft", "limit", "interest", "loan", "emi",
    "installment", "deposit", "withdrawal", "atm", "qr", "merchant", "settlement", "payout",
)  # fmt: skip
VOCABULARY_BN = (
    "অর্ডার", "টাকা", "পেমেন্ট", "রিফান্ড", "ডেলিভারি", "পাসওয়ার্ড", "অ্যাপ", "কার্ড", "ইমেইল",
    "ফোন", "আপডেট", "সমস্যা", "লগইন", "বিল", "দাম", "ঠিকানা", "কুরিয়ার", "প্যাকেট", "স্ক্রিন",
    "বার্তা", "ব্যাংক", "ব্যালেন্স", "রসিদ", "দোকান", "কুপন", "ছাড়", "ফেরত", "বদল", "ওয়ারেন্টি",
    "ব্যাটারি", "চার্জার", "নেটওয়ার্ক", "গতি", "ক্যামেরা", "ছবি", "ভিডিও", "লাইসেন্স", "গ্রাহক",
    "অ্যাকাউন্টের", "অর্ডারের", "টাকার", "পেমেন্টের", "ডেলিভারিতে", "কুরিয়ারের", "ঠিকানায়",
    "বিকাশ", "নগদ", "রকেট", "ঢাকা", "চট্টগ্রাম", "সিলেট", "খুলনা", "রাজশাহী", "বরিশাল",
    "যাচাই", "কোড", "পিন", "লক", "বন্ধ", "ভাঙা", "দেরি", "ভুল", "বাতিল", "অনুমোদন", "মেয়াদ",
    "ভাউচার", "উপহার", "পয়েন্ট", "ক্যাশব্যাক", "অভিযোগ", "মতামত", "ম্যানেজার", "শাখা", "গুদাম",
    "কিস্তি", "জমা", "উত্তোলন", "এটিএম", "কিউআর", "মার্চেন্ট", "ট্র্যাকিং", "নম্বর", "সময়",
)  # fmt: skip


class _Chatter:
    """A short free-text sentence per message: 4-12 words, Zipf-like word frequencies."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.en = _Picker(rng, [1 / (k + 1) for k in range(len(VOCABULARY_EN))])
        self.bn = _Picker(rng, [1 / (k + 1) for k in range(len(VOCABULARY_BN))])

    def __call__(self) -> str:
        rng = self.rng
        bengali = rng.random() < 0.25
        vocab, pick = (VOCABULARY_BN, self.bn) if bengali else (VOCABULARY_EN, self.en)
        words = [vocab[pick()] for _ in range(rng.randint(4, 12))]
        if rng.random() < 0.2:
            # A reference a customer quotes: near-unique, what agents search for most.
            words.insert(rng.randrange(len(words)), f"ref{rng.randrange(10**7):07d}")
        return " " + " ".join(words) + "."


@dataclass(frozen=True)
class SeedInfo:
    """What a benchmark needs to know about a seeded database."""

    path: Path
    n: int
    agent_email: str = BENCH_AGENT_EMAIL
    password: str = BENCH_PASSWORD


def db_path(n: int, name: str = "queue") -> Path:
    return RESULTS / f"{name}-{n}.sqlite3"


def seed_database(n: int, *, reseed: bool = False, name: str = "queue") -> SeedInfo:
    """The cached database with ``n`` tickets, seeding it first if missing (or ``reseed``)."""
    path = db_path(n, name)
    if path.exists() and not reseed:
        _ensure_indexes(path)
        return SeedInfo(path, n)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".seeding")
    for stale in (tmp, path, *path.parent.glob(path.name + "-*")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    _seed(tmp, n)
    tmp.rename(path)
    print(f"seeded {n:,} tickets into {path} in {time.perf_counter() - started:.1f} s")
    return SeedInfo(path, n)


def _add_missing_columns(path: Path) -> None:
    """Columns the models gained since the cache was seeded, added as a migration would (each
    nullable or with a server default; SQLite adds a column without rewriting the table), so a
    million-ticket cache need not be seeded again for a new column."""
    import sqlite3

    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateColumn

    conn = sqlite3.connect(path)
    try:
        for table in Base.metadata.sorted_tables:
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table.name}")')}
            for column in table.columns:
                if not have or column.name in have:
                    continue
                if not column.nullable and column.server_default is None:
                    raise SystemExit(
                        f"{table.name}.{column.name}: reseed (bench/queue.py --reseed)"
                    )
                ddl = CreateColumn(column).compile(dialect=sqlite_dialect.dialect())
                conn.execute(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
                print(f"cache: added {table.name}.{column.name}")
        conn.commit()
    finally:
        conn.close()


def _ensure_indexes(path: Path) -> None:
    """A cached database seeded before an index was added to the models gets it now, so the
    benchmark always measures the schema the code declares (migrations do the same in prod)."""
    _add_missing_columns(path)
    engine = _bulk_engine(path)
    # Tables added to the models since the seed (empty in the benchmark) come first, so their
    # indexes below have something to index.
    Base.metadata.create_all(engine)
    created = []
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            with engine.begin() as conn:
                exists = conn.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (index.name,)
                ).first()
                if exists is None:
                    index.create(conn)
                    created.append(index.name)
    if created:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        print(f"added missing indexes to the cached database: {', '.join(map(str, created))}")
    engine.dispose()


# ---------------------------------------------------------------------------------------------


class _Picker:
    """Fast weighted choice from a fixed table (random.choices re-sums weights on every call)."""

    def __init__(self, rng: random.Random, weights: Mapping[Any, float] | Sequence[float]) -> None:
        if isinstance(weights, Mapping):
            self.values: list[Any] = list(weights)
            w = list(weights.values())
        else:
            self.values = list(range(len(weights)))
            w = list(weights)
        self.cum = list(accumulate(w))
        self.rng = rng

    def __call__(self) -> Any:
        return self.rng.choices(self.values, cum_weights=self.cum)[0]


def _bulk_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Seeding only: no journal, no fsync, a big page cache. A crash mid-seed leaves a
        # ".seeding" file that is never used.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-400000")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    return engine


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


_BULK_TABLES = ("tickets", "messages", "ticket_tags", "customers", "customer_identities")


def _bulk_indexes() -> list[Index]:
    tables = Base.metadata.tables
    return [
        ix for t in _BULK_TABLES for ix in sorted(tables[t].indexes, key=lambda i: i.name or "")
    ]


def _seed(path: Path, n: int) -> None:
    rng = random.Random(20261123)
    engine = _bulk_engine(path)
    Base.metadata.create_all(engine)
    indexes = _bulk_indexes()
    with engine.begin() as conn:
        for ix in indexes:
            conn.execute(text(f'DROP INDEX "{ix.name}"'))

    agent_ids, team_ids = _seed_people(engine)
    n_customers = max(SERVICE_CUSTOMERS, n // 5)
    _seed_customers(engine, rng, n_customers)
    tag_ids = _seed_tags(engine)
    _seed_tickets(engine, rng, n, agent_ids, team_ids, n_customers, tag_ids)

    with engine.begin() as conn:
        for ix in tqdm(indexes, desc="indexes", unit="ix"):
            ix.create(conn)
        conn.execute(update(_table("ticket_counter")).values(value=1000 + n))
    with engine.connect() as conn:
        print("ANALYZE ...", flush=True)
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.commit()
    engine.dispose()


def _seed_people(engine: Engine) -> tuple[list[int], list[int]]:
    """Agents and teams through the services, like `helpdesk agent add` makes them."""
    with Session(engine) as session, session.begin():
        agents: list[Agent] = []
        for k in range(1, N_AGENTS + 1):
            first, last = FIRST_NAMES[k % len(FIRST_NAMES)], LAST_NAMES[k % len(LAST_NAMES)]
            agents.append(
                create_agent(
                    session,
                    f"bench-agent-{k:02d}@helpdesk.invalid",
                    f"{first} {last} {k:02d}",
                    # Only the agent the benchmark signs in as pays for an argon2 hash.
                    BENCH_PASSWORD if k == 1 else None,
                    role=AgentRole.ADMIN if k == 1 else AgentRole.AGENT,
                    language="bn" if k % 7 == 0 else None,
                )
            )
        teams = [
            create_team(session, name, agents[i :: len(TEAMS)]) for i, name in enumerate(TEAMS)
        ]
        return [a.id for a in agents], [t.id for t in teams]


def _customer_name(rng: random.Random, k: int) -> tuple[str, str | None]:
    if k % 5 == 0:
        return BN_NAMES[k % len(BN_NAMES)], "bn"
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", None


def _seed_customers(engine: Engine, rng: random.Random, n_customers: int) -> None:
    with Session(engine) as session, session.begin():
        for k in range(1, SERVICE_CUSTOMERS + 1):
            name, lang = _customer_name(rng, k)
            resolve_customer(
                session, IdentityKind.EMAIL, f"customer{k}@example.com", name=name, language=lang
            )
    customers = _table("customers")
    identities = _table("customer_identities")
    bar = tqdm(total=n_customers, initial=SERVICE_CUSTOMERS, desc="customers", unit="row")
    with engine.begin() as conn:
        for start in range(SERVICE_CUSTOMERS + 1, n_customers + 1, BATCH):
            c_rows: list[dict[str, Any]] = []
            i_rows: list[dict[str, Any]] = []
            for k in range(start, min(start + BATCH, n_customers + 1)):
                name, lang = _customer_name(rng, k)
                email = f"customer{k}@example.com"
                created = NOW - SPAN * rng.random()
                c_rows.append(
                    {"id": k, "name": name, "email": email, "language": lang, "notes": "",
                     "created_at": created, "updated_at": created}
                )  # fmt: skip
                i_rows.append(
                    {"customer_id": k, "kind": IdentityKind.EMAIL, "value": email,
                     "verified": False, "bouncing": False, "created_at": created}
                )  # fmt: skip
            conn.execute(insert(customers), c_rows)
            conn.execute(insert(identities), i_rows)
            bar.update(len(c_rows))
    bar.close()


def _seed_tags(engine: Engine) -> list[int]:
    with engine.begin() as conn:
        conn.execute(
            insert(_table("tags")), [{"id": i + 1, "name": t} for i, t in enumerate(TAG_NAMES)]
        )
    return [i + 1 for i in range(len(TAG_NAMES))]


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def _seed_tickets(
    engine: Engine,
    rng: random.Random,
    n: int,
    agent_ids: list[int],
    team_ids: list[int],
    n_customers: int,
    tag_ids: list[int],
) -> None:
    status = _Picker(rng, STATUS_WEIGHTS)
    channel = _Picker(rng, CHANNEL_WEIGHTS)
    priority = _Picker(rng, PRIORITY_WEIGHTS)
    msg_count = _Picker(rng, MESSAGE_COUNT_WEIGHTS)
    tag_count = _Picker(rng, TAG_COUNT_WEIGHTS)
    tag = _Picker(rng, TAG_WEIGHTS)
    # Some agents carry far more tickets than others; ~20% of tickets have nobody.
    load = [1 / (k + 1) ** 0.5 for k in range(len(agent_ids))]
    assignee = _Picker(rng, [sum(load) / 4, *load])  # index 0: unassigned (20%)
    kind_of = {c: MessageKind(c.value) for c in ChannelKind}
    # Free text after each canned body, from its own RNG so every other column is drawn exactly
    # as before (the queue benchmark's data does not move).
    chatter = _Chatter(random.Random(6))
    tickets_t, messages_t = _table("tickets"), _table("messages")
    bar = tqdm(total=n, desc="tickets", unit="ticket")
    n_messages = 0
    with engine.begin() as conn:
        for chunk in _chunks(n, BATCH):
            t_rows: list[dict[str, Any]] = []
            m_rows: list[dict[str, Any]] = []
            tag_rows: list[dict[str, Any]] = []
            for i in chunk:
                tid = i + 1
                created = NOW - SPAN + SPAN * ((i + rng.random()) / n)
                if rng.random() < 0.85:
                    updated = created + timedelta(days=rng.expovariate(1 / 3))
                else:
                    updated = created + (NOW - created) * rng.random()
                updated = min(updated, NOW)
                st: TicketStatus = status()
                ch: ChannelKind = channel()
                a = assignee()
                bengali = rng.random() < 0.2
                subject = rng.choice(SUBJECTS_BN if bengali else SUBJECTS_EN).format(k=tid * 7)
                customer_id = int(n_customers * rng.random() ** 1.5) + 1
                count = msg_count()
                # The first message opens the ticket; the last one is at most its last update.
                step = (updated - created) / max(count - 1, 1)
                first_response = None
                at = created
                for m in range(count):
                    at = created + step * m
                    inbound = m % 2 == 0
                    note = not inbound and rng.random() < 0.1
                    if not inbound and first_response is None and not note:
                        first_response = at
                    row: dict[str, Any] = {
                        "ticket_id": tid,
                        "direction": Direction.INBOUND if inbound else Direction.OUTBOUND,
                        "kind": MessageKind.NOTE if note else kind_of[ch],
                        "internal": note,
                        "author_customer_id": customer_id if inbound else None,
                        "author_agent_id": None if inbound else agent_ids[(tid + m) % N_AGENTS],
                        "subject": subject if m == 0 else None,
                        "body_text": rng.choice(
                            NOTES if note else BODIES_IN if inbound else BODIES_OUT
                        )
                        + chatter(),
                        "message_id": (
                            f"{tid}.{m}@bench.helpdesk.invalid" if ch == ChannelKind.EMAIL else None
                        ),
                        "delivery_status": (
                            DeliveryStatus.SENT if not inbound and not note else None
                        ),
                        "sent_at": at if not inbound and not note else None,
                        "created_at": at,
                    }
                    m_rows.append(row)
                n_messages += count
                for tg in {tag() for _ in range(tag_count())}:
                    tag_rows.append({"ticket_id": tid, "tag_id": tag_ids[tg]})
                t_rows.append(
                    {
                        "id": tid,
                        "number": 1000 + tid,
                        "subject": subject,
                        "status": st,
                        "active": st.active,
                        "priority": priority(),
                        "channel": ch,
                        "customer_id": customer_id,
                        "assignee_id": agent_ids[a - 1] if a else None,
                        "team_id": team_ids[tid % len(team_ids)] if rng.random() < 0.9 else None,
                        "language": "bn" if bengali else "en",
                        "version": 1 + count,
                        "created_at": created,
                        "updated_at": updated,
                        "first_response_at": first_response,
                        "resolved_at": updated if not st.active else None,
                        "last_message_at": at,
                        "message_count": count,
                    }
                )
            conn.execute(insert(tickets_t), t_rows)
            conn.execute(insert(messages_t), m_rows)
            if tag_rows:
                conn.execute(insert(ticket_tags), tag_rows)
            bar.update(len(t_rows))
            bar.set_postfix(messages=f"{n_messages:,}")
    bar.close()
