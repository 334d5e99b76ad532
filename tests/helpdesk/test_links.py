"""Links in mail point where the helpdesk really is (HELPDESK_BASE_URL, else where it serves),
and a request from outside never chooses where a customer's sign-in link points."""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from flask import Flask
from flask_login import login_user
from sqlalchemy.orm import Session

from helpdesk.links import DEFAULT, base_url, served_url
from helpdesk.models import Agent
from tests.servers import free_port


def test_where_links_point(app: Flask, session: Session, agent: Agent) -> None:
    assert served_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert served_url("10.0.0.5", 80) == "http://10.0.0.5:80"
    assert served_url("::1", 5001) == "http://[::1]:5001"
    app.config["BASE_URL"] = None
    with app.app_context():
        assert base_url() == DEFAULT  # nothing known: serve's own default
        app.config["SERVED_URL"] = "http://127.0.0.1:8123"
        assert base_url() == "http://127.0.0.1:8123"
    # A visitor's request does not choose (a forged Host header would steal the link) ...
    with app.test_request_context("/portal/signin", base_url="http://evil.example"):
        assert base_url() == "http://127.0.0.1:8123"
    # ... a signed-in agent's does: their browser reached us there.
    with app.test_request_context("/agent/queue", base_url="https://desk.example:8443"):
        login_user(agent)
        assert base_url() == "https://desk.example:8443"
    app.config["BASE_URL"] = "https://support.example.com/"
    with app.test_request_context("/agent/queue", base_url="https://desk.example:8443"):
        login_user(agent)
        assert base_url() == "https://support.example.com"  # the setting wins everywhere


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _csrf(opener: urllib.request.OpenerDirector, url: str) -> str:
    page = opener.open(url, timeout=30).read().decode()
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    assert found, page[:500]
    return found.group(1)


def test_a_served_helpdesk_mails_links_to_its_own_port(tmp_path: Path) -> None:
    """`helpdesk serve --port N` with no HELPDESK_BASE_URL: the sign-in link mail (composed by
    the worker process serve starts) points at port N, also when the request forged its Host."""
    port = free_port()
    instance = tmp_path / "i"
    env = {**os.environ, "HELPDESK_INSTANCE_PATH": str(instance),
           "HELPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}"}  # fmt: skip
    for key in ("HELPDESK_BASE_URL", "HELPDESK_SERVED_URL"):
        env.pop(key, None)
    exe = str(Path(sys.executable).parent / "helpdesk")
    subprocess.run([exe, "init"], env=env, check=True, capture_output=True, timeout=120)
    script = (
        "from helpdesk import create_app\n"
        "from helpdesk.extensions import db\n"
        "from helpdesk.inbound import InboundMessage\n"
        "from helpdesk.services.inbound import receive\n"
        "app = create_app({'WORKER_ENABLED': False})\n"
        "with app.app_context(), db.transaction(app) as s:\n"
        "    receive(s, InboundMessage('email', 'rina@example.com', 'hello', subject='Hi'))\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/login" in first
        assert "HELPDESK_BASE_URL" in proc.stdout.readline()  # the hint to set it
        deadline = time.monotonic() + 60
        while not _listening(port):  # the server prints before it binds
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/portal/signin"
        for forged in (None, "evil.example"):
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            token = _csrf(opener, url)
            body = urllib.parse.urlencode({"email": "rina@example.com", "csrf_token": token})
            request = urllib.request.Request(url, data=body.encode(), method="POST")
            if forged:
                request.add_header("Host", forged)
            assert opener.open(request, timeout=30).status == 200
        outbox = instance / "mail-outbox"
        deadline = time.monotonic() + 60
        while len(list(outbox.glob("*.eml"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker process delivers; the folder is all we can watch
        mails = sorted(outbox.glob("*.eml"))
        assert len(mails) == 2
        for path in mails:
            msg = email.message_from_bytes(path.read_bytes())
            part = msg.get_body(("plain",)) if hasattr(msg, "get_body") else None
            text = (part or msg).get_payload(decode=True).decode() if part else path.read_text()
            links = re.findall(r"https?://[^\s\"'<>]+/portal/m/\S+", text)
            assert links, text
            assert all(link.startswith(f"http://127.0.0.1:{port}/portal/m/") for link in links)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
