"""Languages: gettext helpers and how the locale of a request is chosen.

Every user-facing string goes through ``_`` (now) or ``_l`` (lazy, for module-level strings such
as form labels and enum labels). English is the source language; Bengali (``bn``) is complete.
Dates, times and numbers are formatted here too (:func:`format_datetime`, :func:`format_number`,
...), in the reader's time zone and with the locale's own digits (:func:`localize`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_translations, gettext
from flask_babel import pgettext as _pgettext
from flask_babel.speaklater import LazyString
from jinja2 import pass_context
from markupsafe import Markup

pgettext = _pgettext

LANGUAGE_NAMES = {"en": "English", "bn": "বাংলা"}


def select_locale() -> str | None:
    """The user's saved preference, then the session's choice, then Accept-Language."""
    languages = list(current_app.config["LANGUAGES"])
    forced = g.get("force_locale")
    if forced in languages:
        return str(forced)
    if not has_request_context():
        return None
    from flask_login import current_user

    preferred = getattr(current_user, "language", None) if current_user else None
    if preferred in languages:
        return str(preferred)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages)


# --- time zones ----------------------------------------------------------------------------------
# Every date and time a person reads is shown in their time zone: an agent's own
# (``Agent.timezone``, set on the profile page), a customer's when known, else the instance's
# (config ``TIMEZONE``, ``HELPDESK_TIMEZONE``). Flask-Babel asks :func:`select_timezone`;
# :func:`force_timezone` switches for a mail composed for someone else.


def is_timezone(name: str | None) -> bool:
    """Whether ``name`` is an IANA zone this machine knows (``Asia/Dhaka``, ``UTC``)."""
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def timezone_choices() -> list[str]:
    """The zones offered in a select: pytz's common (current, canonical) IANA names."""
    import pytz

    return list(pytz.common_timezones)


def select_timezone() -> str | None:
    """A forced zone (:func:`force_timezone`), then the signed-in person's, then the
    instance's."""
    forced = g.get("force_timezone")
    if forced:
        return str(forced)
    if has_request_context():
        from flask_login import current_user

        own = getattr(current_user, "timezone", None) if current_user else None
        if own and is_timezone(own):
            return str(own)
    return str(current_app.config.get("TIMEZONE") or "UTC")


@contextmanager
def force_timezone(name: str | None) -> Iterator[None]:
    """Dates formatted inside are in ``name`` (or the instance's zone when ``None``)."""
    from flask_babel import refresh

    before = g.get("force_timezone")
    g.force_timezone = name if is_timezone(name) else current_app.config.get("TIMEZONE")
    refresh()
    try:
        yield
    finally:
        g.force_timezone = before
        refresh()


# --- digits and day periods ------------------------------------------------------------------
# Babel's CLDR data for bn formats dates and numbers with Latin digits and "AM"/"PM". Every date,
# time, relative time and count passes through :func:`localize` (the one place), which writes
# the digits of the locale's default numbering system (``beng`` for bn: ০-৯) and its day periods.

# The zero of each numbering system we may meet (Unicode keeps the ten digits in a row).
_ZEROS = {"beng": 0x09E6, "deva": 0x0966, "arab": 0x0660, "arabext": 0x06F0}
# Day periods where CLDR still has the Latin abbreviations.
_DAY_PERIODS = {"bn": {"AM": "পূর্বাহ্ণ", "PM": "অপরাহ্ণ"}}
_AM_PM = re.compile(r"\b(AM|PM)\b")


def _locale(locale: str | Locale | None = None) -> Locale:
    if locale is None:
        from flask_babel import get_locale

        locale = get_locale() or "en"
    return locale if isinstance(locale, Locale) else Locale.parse(str(locale))


def localize(text: str, locale: str | Locale | None = None) -> str:
    """``text`` (a formatted date, time or number) with the locale's digits and day periods."""
    loc = _locale(locale)
    periods = _DAY_PERIODS.get(loc.language)
    if periods:
        text = _AM_PM.sub(lambda m: periods[m.group(1)], text)
    zero = _ZEROS.get(loc.default_numbering_system or "latn")
    if zero is None:
        return text
    return text.translate({0x30 + i: zero + i for i in range(10)})


def format_number(value: int | float | None) -> str:
    """A count or number for reading: grouped (``1,234``) in the locale's digits."""
    from flask_babel import format_decimal

    return "" if value is None else localize(format_decimal(value))


def format_percent(value: float | None) -> str:
    """A share (0.5) as a percentage with at most one decimal: "50%", "৫০%"."""
    from flask_babel import format_percent as babel_percent

    return "" if value is None else localize(babel_percent(value, "#,##0.#%"))


def format_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """A date and time in the reader's time zone and locale."""
    from flask_babel import format_datetime as babel_datetime

    return localize(babel_datetime(value, fmt)) if value is not None else ""


def format_date(value: datetime | date | None, fmt: str = "medium") -> str:
    from flask_babel import format_date as babel_date

    return localize(babel_date(value, fmt)) if value is not None else ""


def format_time(value: datetime | None, fmt: str = "short") -> str:
    from flask_babel import format_time as babel_time

    return localize(babel_time(value, fmt)) if value is not None else ""


def format_ago(value: datetime | None, now: datetime) -> str:
    """How long ago (or until) ``value``: "5 minutes ago", "৫ মিনিট আগে"."""
    from flask_babel import format_timedelta

    if value is None:
        return ""
    return localize(str(format_timedelta(value - now, add_direction=True, granularity="minute")))


# --- gettext with the locale's digits ------------------------------------------------------------
# ``%(n)d`` in a message is a count: it is written in the reader's digits. (Strings like ticket
# numbers inside ``%(x)s`` are left alone.)


def _localized_variables(text: str, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not variables:
        return text, variables
    loc = _locale()
    if (loc.default_numbering_system or "latn") == "latn":
        return text, variables
    out = dict(variables)
    for name, value in variables.items():
        if isinstance(value, int) and not isinstance(value, bool):
            text = text.replace(f"%({name})d", f"%({name})s")
            out[name] = localize(str(value), loc)
    return text, out


def _(string: str, **variables: Any) -> str:
    text = gettext(string)
    if not variables:
        return text
    text, values = _localized_variables(text, variables)
    return text % values


def _n(singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    raw = get_translations().ungettext(singular, plural, num)  # flask_babel's would format
    text, values = _localized_variables(raw, variables)
    return text % values


def _l(string: str, **variables: Any) -> LazyString:
    return LazyString(_, string, **variables)


def install_jinja(app: Flask) -> None:
    """Templates' ``_``/``gettext``/``ngettext`` and ``{% trans %}`` with the same digits (Jinja's
    own new-style wrapper would format ``%(n)d`` with Latin digits)."""

    def translated(text: str, variables: dict[str, Any], autoescape: bool) -> str:
        text, values = _localized_variables(text, variables)
        # A translation is trusted markup (as in Jinja's own wrapper); the values are escaped.
        return (Markup(text) if autoescape else text) % values  # noqa: S704

    @pass_context
    def jinja_gettext(__context: Any, __string: str, **variables: Any) -> str:
        return translated(gettext(__string), variables, __context.eval_ctx.autoescape)

    @pass_context
    def jinja_ngettext(
        __context: Any, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        text = get_translations().ungettext(__singular, __plural, __num)
        return translated(text, variables, __context.eval_ctx.autoescape)

    @pass_context
    def jinja_pgettext(__context: Any, __ctx: str, __string: str, **variables: Any) -> str:
        return translated(pgettext(__ctx, __string), variables, __context.eval_ctx.autoescape)

    @pass_context
    def jinja_npgettext(
        __context: Any, __ctx: str, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        text = get_translations().unpgettext(__ctx, __singular, __plural, __num)
        return translated(text, variables, __context.eval_ctx.autoescape)

    @app.context_processor
    def render_gettext() -> dict[str, Any]:
        # ``_`` bound, for one render, to the catalog the render's every call would look up:
        # Flask-Babel finds it again per call (domain, locale, cache: ~10 lookups of ``g``), and a
        # queue page says ~110 strings (a tenth of its CPU). The environment's ``_`` above stays
        # for what renders without this context (macros imported without it).
        catalog = get_translations()

        @pass_context
        def gettext_once(__context: Any, __string: str, **variables: Any) -> str:
            return translated(catalog.ugettext(__string), variables, __context.eval_ctx.autoescape)

        return {"_": gettext_once, "gettext": gettext_once}

    env = app.jinja_env
    env.install_gettext_callables(  # type: ignore[attr-defined]
        jinja_gettext,
        jinja_ngettext,
        newstyle=False,  # ours already format their variables...
        pgettext=jinja_pgettext,
        npgettext=jinja_npgettext,
    )
    env.newstyle_gettext = True  # type: ignore[attr-defined]  # ...so {% trans %} passes them
