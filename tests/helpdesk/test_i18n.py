"""Every user-facing string is in the catalog and the Bengali catalog is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "helpdesk" / "translations" / "bn" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The strings marked in the code right now (what `make messages` would extract)."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [
            str(pybabel),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "_n:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def bengali() -> Catalog:
    with PO.open("rb") as fh:
        return read_po(fh, locale="bn")


def test_every_marked_string_has_a_bengali_translation(
    extracted: Catalog, bengali: Catalog
) -> None:
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = bengali.get(message.id)
        strings = translated.string if translated is not None else ""
        if isinstance(strings, str):
            strings = (strings,)
        if translated is None or translated.fuzzy or not all(strings):
            missing.append(message.id)
    assert missing == [], "run `make messages` and translate these in bn/messages.po"


def test_placeholders_survive_translation(bengali: Catalog) -> None:
    for message in bengali:
        if not message.id or not message.string:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        target = message.string if isinstance(message.string, str) else message.string[0]
        assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(target)), source


def test_translations_are_bengali_script(bengali: Catalog) -> None:
    """Catches a catalog filled with copies of the English source."""
    bengali_letters = re.compile(r"[\u0980-\u09FF]")
    untranslated = [
        m.id
        for m in bengali
        if m.id
        and isinstance(m.string, str)
        and not bengali_letters.search(m.string)
        # Language names stay in their own script; protocol and format names are the same words
        # in Bengali settings screens (what the mail provider's documentation says).
        and m.id not in {"English", "Markdown", "SSL/TLS", "STARTTLS", "OAuth2 (XOAUTH2)"}
    ]
    assert untranslated == []


def test_a_template_says_its_strings_in_the_language_it_is_rendered_in(app: Flask) -> None:
    """Templates' ``_`` is bound once per render (helpdesk.i18n.install_jinja): each render still
    speaks the language in force when it starts (a mail in the customer's language inside an
    agent's request), with placeholders escaped and ``{% trans %}`` the same."""
    from flask import render_template_string
    from flask_babel import force_locale

    from tests.conftest import bn

    page = '{{ _("Open") }}|{{ _("Select %(number)s", number="<") }}|{% trans %}Open{% endtrans %}'
    with app.test_request_context("/"):
        with force_locale("bn"):
            bengali = render_template_string(page)
        english = render_template_string(page)
        with force_locale("bn"):
            again = render_template_string(page)
    assert english == "Open|Select &lt;|Open"
    select = bn("Select %(number)s").replace("%(number)s", "&lt;")
    assert bengali == again == f"{bn('Open')}|{select}|{bn('Open')}"
