"""Email ingest benchmark: `helpdesk mail fetch --once` on a mailbox of 2,000 mails.

The figure is what an admin meets: the one-off command run as a process, timed wall-clock from
its start (imports, app, connecting) until it exits with every mail committed, on a mailbox
of a private Dovecot (``tests.servers.DovecotServer``). Target: >= 500 msg/s, on SQLite and on
PostgreSQL (``--database``). The corpus is a mixed support inbox (``--corpus mixed``, the
default: ``tests/channels/email/corpus.py``: Cc'd people who then write themselves, several
recipients, web forms with Reply-To, forwards inline and as message/rfc822, HTML newsletters
with list headers, out-of-office replies, a person writing from a second address or in another
case, attachments of many types and sizes, English and Bengali, ~30% replies to earlier mails);
``--corpus simple`` is the bench's first corpus (plain/HTML/attachments, 30% replies), kept to
compare with the history in docs/performance.md. Each run also prints how many batches failed
and were stored one mail at a time (the slow path; must be 0), and the command's own start-up
(the same command with nothing new to fetch).

    .venv/bin/python bench/email_ingest.py [--n 2000] [--runs 3] [--database sqlite|postgresql]
    .venv/bin/python bench/email_ingest.py --in-process   # fetch_once in this process, + IDLE

``--in-process`` measures ``fetch_once`` inside this process instead (parser processes starting,
then running), the floor (stdlib parse + bare insert of the same mails) and the p95
arrival-to-queue latency under IDLE (target <= 2 s).

``--served`` measures what a new installation meets instead: ``helpdesk serve`` started on a
mailbox that already holds ``--n`` mails of the mixed inbox, in each async mode, while a client
asks for ``GET /login`` back to back. Prints the drain rate (server start -> every mail stored;
target >= 300 msg/s) and the web's p95 during it (target <= 200 ms).

    .venv/bin/python bench/email_ingest.py --served [--n 3000] [--modes gevent,threading]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

# Run as a script, bench/ would be first on sys.path and bench/queue.py would shadow the stdlib.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from flask import Flask  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from channels.email.accounts import ServerConfig, add_email_channel  # noqa: E402
from helpdesk import create_app  # noqa: E402
from helpdesk.db import Base, utcnow  # noqa: E402
from helpdesk.extensions import db  # noqa: E402
from tests.servers import DovecotServer  # noqa: E402

EN = [
    "My order has not arrived yet. Could you check the tracking number?",
    "I was charged twice for the same invoice. Please refund one payment.",
    "The app crashes when I open settings on Android 14. Log attached.",
    "How do I change the email address on my account?",
]
BN = [
    "আমার অর্ডার এখনও আসেনি। অনুগ্রহ করে ট্র্যাকিং নম্বরটি দেখবেন?",
    "একই চালানের জন্য আমার কাছ থেকে দুবার টাকা কাটা হয়েছে।",
    "অ্যাপের সেটিংস খুললেই অ্যাপটি বন্ধ হয়ে যায়।",
    "আমার অ্যাকাউন্টের ইমেইল ঠিকানা কীভাবে বদলাব?",
]


def make_corpus(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    mails: list[bytes] = []
    sent: list[tuple[str, str, str]] = []  # (message-id, sender, subject)
    for i in range(n):
        bengali = rnd.random() < 0.4
        text = rnd.choice(BN if bengali else EN)
        mail = EmailMessage()
        msgid = f"bench-{i}-{rnd.getrandbits(32):x}@customer.example"
        if sent and rnd.random() < 0.3:
            parent_id, sender, subject = rnd.choice(sent)
            mail["Subject"] = f"Re: {subject}"
            mail["In-Reply-To"] = f"<{parent_id}>"
            mail["References"] = f"<{parent_id}>"
            text += "\n\nOn Mon, someone wrote:\n> " + rnd.choice(EN)
        else:
            sender = f"customer{rnd.randrange(n // 3 + 1)}@example.com"
            subject = ("অর্ডার " if bengali else "Order ") + str(1000 + i)
            mail["Subject"] = subject
        mail["From"] = f"{'রহিম' if bengali else 'Jane'} <{sender}>"
        mail["To"] = "support@helpdesk.test"
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = f"<{msgid}>"
        mail.set_content(text)
        if rnd.random() < 0.4:
            mail.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
        if rnd.random() < 0.15:
            mail.add_attachment(
                os.urandom(rnd.randrange(2_000, 60_000)),
                maintype="application",
                subtype="octet-stream",
                filename=rnd.choice(["log.txt", "screenshot.png", "চালান.pdf", "export.csv"]),
            )
        sent.append((msgid, sender, mail["Subject"]))
        mails.append(bytes(mail))
    return mails


def bench_imap(dovecot: DovecotServer, user: str) -> ServerConfig:
    """The IMAP settings of a benchmark mailbox on the private Dovecot."""
    return ServerConfig(
        host=dovecot.host, port=dovecot.port, user=user, password="bench-pw", security="none"
    )


def append_all(dovecot: DovecotServer, user: str, password: str, mails: list[bytes]) -> None:
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    client.login(user, password)
    for raw in mails:
        client.append("INBOX", raw)
    client.logout()


def download_rate(dovecot: DovecotServer, user: str, password: str, batch: int) -> float:
    """IMAP ``FETCH BODY.PEEK[]`` of the whole folder in the ingest's batches, nothing else."""
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    client.login(user, password)
    client.select_folder("INBOX", readonly=True)
    began = time.perf_counter()
    uids = sorted(client.search(["ALL"]))
    for start in range(0, len(uids), batch):
        client.fetch(uids[start : start + batch], ["BODY.PEEK[]"])
    elapsed = time.perf_counter() - began
    client.logout()
    return len(uids) / elapsed


def floor_rate(mails: list[bytes], workdir: Path) -> float:
    """stdlib parse + one bare INSERT per mail, one transaction: the least any ingest does.

    The same mails as the ingest, already in memory (no IMAP), parsed with ``policy.default``
    and inserted with the sqlite3 module in one process, so one core.
    """
    conn = sqlite3.connect(workdir / "floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, sender, subject, body, msgid)")
    parser = BytesParser(policy=policy.default)
    began = time.perf_counter()
    conn.execute("BEGIN")
    for raw in mails:
        msg = parser.parsebytes(raw)
        body = msg.get_body(("plain", "html"))
        conn.execute(
            "INSERT INTO m (sender, subject, body, msgid) VALUES (?, ?, ?, ?)",
            (
                str(msg["From"]),
                str(msg["Subject"]),
                body.get_content() if body else "",
                str(msg["Message-ID"]),
            ),
        )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return len(mails) / elapsed


def inbound_count(engine: Engine) -> int:
    """Mails dealt with so far: inbound messages stored, and automatic mail held (it opens no
    ticket) or quarantined; counted on a connection of our own that reads only (the
    measurement must not take the write lock the server needs)."""
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT (SELECT count(*) FROM messages WHERE direction = 'inbound')"
                " + (SELECT count(*) FROM quarantined_mail)"
            ).scalar_one()
        )


def served(n: int, modes: list[str], database: str, running: bool) -> None:
    """The served case: a backlog drained by `helpdesk serve` while the web is asked."""
    from sqlalchemy import create_engine

    from tests.channels.chat.servers import ChatSite
    from tests.channels.email.corpus import make_corpus as mixed_corpus
    from tests.channels.email.test_backlog import LoginProbe
    from tests.servers import PostgresCluster

    mails, facts = mixed_corpus(n, seed=5)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    print(f"corpus: {n} mails, " + ", ".join(f"{k} {v}" for k, v in sorted(facts.kinds.items())))
    with contextlib.ExitStack() as stack:
        dovecot = stack.enter_context(DovecotServer())
        postgres = stack.enter_context(PostgresCluster()) if database == "postgresql" else None
        for mode in modes:
            user = f"served-{mode}-{int(running)}"
            dovecot.add_user(user, "bench-pw")
            append_all(dovecot, user, "bench-pw", mails)
            instance = Path(tempfile.mkdtemp(prefix=f"bench-served-{mode}-"))
            url = (
                postgres.create_database(f"served_{mode}_{int(running)}")
                if postgres is not None
                else f"sqlite:///{instance / 'helpdesk.sqlite3'}"
            )
            site = ChatSite(instance=instance, database_url=url)
            site.setup()
            imap = bench_imap(dovecot, user)

            def connect(imap: ServerConfig = imap, site: ChatSite = site) -> None:
                site.run(
                    lambda s: add_email_channel(
                        s, "Bench", address="support@helpdesk.test", imap=imap
                    )
                )

            counter = create_engine(url)
            if running:
                # The server runs first; the mailbox is connected afterwards, as an admin does.
                # The channel is added from this process, so the worker process notices it at
                # its next refresh (1 s here; in the admin UI it is told at once).
                server = site.serve(
                    env={"HELPDESK_ASYNC_MODE": mode, "HELPDESK_MAIL_CHANNEL_REFRESH_SECONDS": "1"}
                )
                began = time.perf_counter()
                connect()
                label = "connected to the running server"
            else:
                connect()
                began = time.perf_counter()
                server = site.serve(env={"HELPDESK_ASYNC_MODE": mode})
                label = "from server start"
            probe = LoginProbe(server.url)
            probe.start()
            stored, first = 0, None
            while stored < n and time.perf_counter() - began < 600:
                stored = inbound_count(counter)
                if stored and first is None:
                    first = time.perf_counter() - began
                time.sleep(0.1)
            elapsed = time.perf_counter() - began
            p95, asked = probe.finish()
            site.close()
            counter.dispose()
            print(
                f"served, {mode}, {database}: {stored}/{n} mails stored or held in {elapsed:.1f}s"
                f" {label}"
                f" = {stored / elapsed:6.1f} msg/s   target >= 300 msg/s"
            )
            if first is not None and elapsed > first:
                print(
                    f"  first mail stored after {first:.1f}s; from then on"
                    f" {stored / (elapsed - first):6.1f} msg/s"
                )
            print(
                f"  GET /login while draining: p95 {p95 * 1000:6.1f} ms over {asked} requests,"
                f" {len(probe.failures)} failed   target p95 <= 200 ms"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


_SUMMARY = re.compile(
    r"(\d+) mails, (\d+) new tickets, (\d+) duplicates, (\d+) quarantined, (\d+) automatic"
)
HELPDESK = str(Path(sys.executable).with_name("helpdesk"))


def corpus(kind: str, n: int) -> tuple[list[bytes], str]:
    """The mails and a line describing them."""
    if kind == "simple":
        return make_corpus(n), f"simple corpus: {n} mails"
    from tests.channels.email.corpus import make_corpus as mixed_corpus

    mails, facts = mixed_corpus(n, seed=13)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(facts.kinds.items()))
    size = sum(len(m) for m in mails) / len(mails) / 1024
    return mails, f"mixed corpus: {n} mails, {size:.1f} KiB average; {kinds}"


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_fetch(
    instance: Path, url: str, *, label: str, n: int, expect_mail: bool = True
) -> tuple[float, float]:
    """Run ``helpdesk mail fetch --once`` as its own process; (wall seconds, CPU seconds of
    the command and its parser processes)."""
    import subprocess

    env = {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_DATABASE_URL": url,
        "HELPDESK_SECRET_KEY": "bench",
        "HELPDESK_MAIL_FROM": "support@helpdesk.test",
    }
    cpu_before = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run(
        [HELPDESK, "mail", "fetch", "--once"], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - began
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"mail fetch failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    redone = done.stderr.count("retrying one by one")
    found = _SUMMARY.search(done.stdout)
    if not expect_mail:
        return elapsed, cpu
    assert found, done.stdout
    fetched, created, _dup, quarantined, held = (int(g) for g in found.groups())
    replies = fetched - created - quarantined - held
    print(
        f"mail fetch --once, {label}: {fetched} mails ({created} new tickets, {replies} threaded"
        f" replies, {held} automatic mails held, {quarantined} quarantined) in {elapsed:.2f}s"
        f" = {fetched / elapsed:6.1f} msg/s   target >= 500 msg/s"
    )
    print(f"  batches that failed and were redone one mail at a time: {redone}   target 0")
    cores = os.cpu_count() or 1
    print(
        f"  CPU of the command and its parser processes: {cpu:.2f}s ({cpu / n * 1000:.2f} ms"
        f" per mail): on {cores} idle cores at best {n / (cpu / cores):6.1f} msg/s"
    )
    if fetched != n:
        raise SystemExit(f"fetched {fetched} of {n}")
    return elapsed, cpu


def bench_cli(n: int, runs: int, database: str, kind: str) -> None:
    """The headline figure: the one-off command, start-up included (see the docstring)."""
    from tests.servers import PostgresCluster

    mails, described = corpus(kind, n)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    print(described)
    rates: list[float] = []
    cpus: list[float] = []
    startups: list[float] = []
    with contextlib.ExitStack() as stack:
        dovecot = stack.enter_context(DovecotServer())
        postgres = stack.enter_context(PostgresCluster()) if database == "postgresql" else None
        for run in range(runs):
            user = f"cli{run}"
            dovecot.add_user(user, "bench-pw")
            append_all(dovecot, user, "bench-pw", mails)
            instance = Path(tempfile.mkdtemp(prefix=f"bench-cli-{run}-"))
            url = (
                str(postgres.create_database(f"cli_{run}"))
                if postgres is not None
                else f"sqlite:///{instance / 'helpdesk.sqlite3'}"
            )
            app = create_app(
                {
                    "INSTANCE_PATH": str(instance),
                    "DATABASE_URL": url,
                    "SECRET_KEY": "bench",
                    "WORKER_ENABLED": False,
                }
            )
            from helpdesk.migrate import upgrade

            upgrade(app)  # the schema `helpdesk init` makes
            with app.app_context(), db.transaction(app) as session:
                add_email_channel(
                    session,
                    "Bench",
                    address="support@helpdesk.test",
                    imap=bench_imap(dovecot, user),
                )
            db.engine(app).dispose()
            elapsed, cpu = cli_fetch(instance, url, label=f"{kind}, {database}, run {run + 1}", n=n)
            rates.append(n / elapsed)
            cpus.append(cpu)
            # The same command again, nothing new: what starting it costs.
            startup, startup_cpu = cli_fetch(instance, url, label="", n=0, expect_mail=False)
            startups.append(startup)
            print(
                f"  the same command, nothing to fetch (start-up, connect, exit): {startup:.2f}s"
                f" ({startup_cpu:.2f}s CPU)"
            )
    print(
        f"median of {runs}: {statistics.median(rates):6.1f} msg/s (runs "
        + " / ".join(f"{r:.0f}" for r in rates)
        + f"), start-up {statistics.median(startups):.2f}s   target >= 500 msg/s ({database})"
    )
    cores = os.cpu_count() or 1
    print(
        f"CPU per run (median): {statistics.median(cpus):.2f}s: on {cores} idle cores at best"
        f" {n / (statistics.median(cpus) / cores):6.1f} msg/s"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--served", action="store_true", help="the served backlog case (see above)")
    ap.add_argument("--modes", default="gevent,threading", help="with --served: async modes")
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument(
        "--connect-while-running",
        action="store_true",
        help="with --served: start the server first, then connect the mailbox",
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3, help="runs of the command (fresh database)")
    ap.add_argument("--corpus", choices=["mixed", "simple"], default="mixed")
    ap.add_argument(
        "--in-process", action="store_true", help="fetch_once in this process, floor, IDLE"
    )
    ap.add_argument("--latency-mails", type=int, default=40, help="0 skips the IDLE part")
    ap.add_argument("--batch", type=int, default=None, help="MAIL_FETCH_BATCH (default: app's)")
    ap.add_argument("--workers", type=int, default=None, help="MAIL_PARSE_WORKERS (0: none)")
    args = ap.parse_args()
    if args.served:
        served(args.n, args.modes.split(","), args.database, args.connect_while_running)
        return
    if not args.in_process:
        bench_cli(args.n, args.runs, args.database, args.corpus)
        return

    from channels.email.imap import FetchResult, MailboxWatcher, fetch_once

    workdir = Path(tempfile.mkdtemp(prefix="bench-email-"))
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    mails, described = corpus(args.corpus, args.n)
    print(described)
    with DovecotServer() as dovecot:
        # Two mailboxes with the same mails: the first run starts the parser processes
        # (cold, as a one-off `helpdesk mail fetch` does), the second finds them running (as a
        # long-running worker does).
        for user in ("bench", "bench2"):
            dovecot.add_user(user, "bench-pw")
            began = time.perf_counter()
            append_all(dovecot, user, "bench-pw", mails)
            print(f"APPEND {len(mails)} mails to {user}: {time.perf_counter() - began:.1f}s")

        def ingest(label: str, user: str) -> tuple[Flask, int]:
            config: dict[str, object] = {
                "INSTANCE_PATH": str(workdir / user / "instance"),
                "DATABASE_URL": f"sqlite:///{workdir / user / 'helpdesk.sqlite3'}",
                "SECRET_KEY": "bench",
                "MAIL_FROM": "support@helpdesk.test",
                "WORKER_ENABLED": False,
            }
            if args.batch is not None:
                config["MAIL_FETCH_BATCH"] = args.batch
            if args.workers is not None:
                config["MAIL_PARSE_WORKERS"] = args.workers
            app = create_app(config)
            Base.metadata.create_all(db.engine(app))
            with app.app_context(), db.transaction(app) as session:
                imap = bench_imap(dovecot, user)
                channel_id = add_email_channel(
                    session, "Bench", address="support@helpdesk.test", imap=imap
                ).id
            began = time.perf_counter()
            result = fetch_once(app, channel_id, since=date(2000, 1, 1))
            elapsed = time.perf_counter() - began
            rate = result.fetched / elapsed
            replies = (
                result.fetched
                - result.created
                - result.duplicates
                - result.quarantined
                - result.held
            )
            print(
                f"ingest, {label}: {result.fetched} mails ({result.created} new tickets, "
                f"{replies} threaded replies, {result.held} automatic mails held, "
                f"{result.quarantined} quarantined) in {elapsed:.2f}s"
            )
            print(f"  throughput: {rate:7.1f} msg/s   target >= 500 msg/s (SQLite)")
            print(f"  batches redone one mail at a time: {result.redone_batches}   target 0")
            rates.append(rate)
            return app, channel_id

        rates: list[float] = []
        app, channel_id = ingest("parser processes starting (cold)", "bench")
        if app.config.get("MAIL_PARSE_WORKERS", 1):
            ingest("parser processes running (warm)", "bench2")
        floor = floor_rate(mails, workdir)
        download = download_rate(
            dovecot, "bench", "bench-pw", int(app.config.get("MAIL_FETCH_BATCH") or 200)
        )
        print(
            f"  floor (stdlib parse + bare insert, 1 core): {floor:7.1f} msg/s   ratio "
            + " / ".join(f"{rate / floor:.2f}" for rate in rates)
        )
        print(f"  IMAP download alone (FETCH BODY.PEEK[]): {download:7.1f} msg/s")
        if args.latency_mails <= 0:
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            return

        # Latency under IDLE: APPEND one mail at a time, time until its batch is committed.
        appended: dict[int, float] = {}
        latencies: list[float] = []
        done = threading.Event()
        lock = threading.Lock()

        def on_batch(batch: FetchResult) -> None:
            now = time.monotonic()
            with lock:
                for uid in batch.uids:
                    if uid in appended:
                        latencies.append(now - appended[uid])
                if len(latencies) >= args.latency_mails:
                    done.set()

        stop = threading.Event()
        watcher = MailboxWatcher(app, channel_id, stop, on_batch=on_batch)
        watcher.start()
        watcher.connected.wait(30)
        client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
        client.login("bench", "bench-pw")
        extra = make_corpus(args.latency_mails, seed=99)
        for raw in extra:
            with lock:
                response = client.append("INBOX", raw)
                match = re.search(rb"APPENDUID \d+ (\d+)", response)
                assert match, response
                appended[int(match.group(1))] = time.monotonic()
            time.sleep(random.uniform(0.05, 0.3))  # mail arrives spread out, not in one burst
        client.logout()
        done.wait(60)
        stop.set()
        watcher.join(30)
        p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else float("nan")
        print(
            f"  arrival-to-queue under IDLE: p50 {statistics.median(latencies):.3f}s "
            f"p95 {p95:.3f}s ({len(latencies)} mails)   target p95 <= 2 s"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
