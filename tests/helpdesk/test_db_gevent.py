"""SQLite under `helpdesk serve`'s gevent loop: waiting for another process's write lock must not
stop the other connections (greenlets) of the server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import text

from helpdesk.db import make_engine

# Runs in a gevent-patched interpreter (HELPDESK_ASYNC_MODE=gevent, as `helpdesk serve`): one
# greenlet writes while the lock is held elsewhere; another ticks every 10 ms meanwhile.
SERVER = textwrap.dedent(
    """
    import sys, time
    import helpdesk  # patches the standard library first
    import gevent
    from sqlalchemy import text
    from helpdesk.db import HelpdeskSession, make_engine

    engine = make_engine(sys.argv[1])
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    def write():
        with HelpdeskSession(bind=engine) as s, s.begin():
            s.execute(text("UPDATE counter SET n = n + 1"))

    gevent.spawn(ticker)
    gevent.sleep(0.05)
    print("waiting", flush=True)
    started = time.monotonic()
    gevent.spawn(write).get(timeout=20)
    done = time.monotonic()
    during = [t for t in ticks if started < t < done]
    print(f"waited {done - started:.3f} ticks {len(during)}", flush=True)
    """
)


def test_a_write_waiting_for_another_process_lets_the_other_greenlets_run(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'gevent.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    holder = engine.connect()
    holder.execute(text("UPDATE counter SET n = 10"))  # BEGIN IMMEDIATE: holds the write lock
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, url],
        env={**os.environ, "HELPDESK_ASYNC_MODE": "gevent"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # the other process holds the lock this long
        holder.commit()
        report = proc.stdout.readline().split()
        assert proc.wait(timeout=20) == 0
    finally:
        holder.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    waited, ticks = float(report[1]), int(report[3])
    assert waited >= 0.4  # it did wait for the lock...
    assert ticks >= 10  # ...while the loop went on (a blocking wait: 0 ticks)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar() == 11  # and then wrote
    engine.dispose()
