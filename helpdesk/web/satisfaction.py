"""Where satisfaction ratings show to agents: the ticket page's Satisfaction box (each round's
answer: the score in words, the comment, when), the history's words for ``satisfaction.rated``,
the agents list's column (answered surveys, share of good ones), and the customer timeline's
entries (their source is :mod:`helpdesk.services.satisfaction_timeline`, registered here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import case, func, select

from helpdesk.extensions import db
from helpdesk.i18n import _, format_number, format_percent
from helpdesk.models import SatisfactionRating
from helpdesk.services import satisfaction, satisfaction_timeline
from helpdesk.web import audit_labels


def score_words(scale: str | None, score: int | None) -> str:
    """A score as a person reads it, in their language: "👍 Good", "★★★★☆ 4 of 5"."""
    if score is None:
        return _("Not answered yet")
    if scale == "good_bad":
        return "👍 " + _("Good") if satisfaction.is_good(score) else "👎 " + _("Bad")
    stars = "★" * score + "☆" * (5 - score)
    return _(
        "%(stars)s %(score)s of %(top)s",
        stars=stars,
        score=format_number(score),
        top=format_number(5),
    )


def ticket_ratings(ticket_id: int) -> list[SatisfactionRating]:
    """The ticket's surveys, one per resolution, oldest first (the ticket page's box)."""
    return list(
        db.session.scalars(
            select(SatisfactionRating)
            .where(SatisfactionRating.ticket_id == ticket_id)
            .order_by(SatisfactionRating.round)
        )
    )


def by_agent() -> dict[int, dict[str, Any]]:
    """Each agent's answered surveys and share of good ones (4–5), in one query (the agents
    list): ``{agent_id: {"answered", "good", "share"}}``, like ``satisfaction.summary``."""
    good_one = case((SatisfactionRating.score >= 4, 1), else_=0)
    rows = db.session.execute(
        select(SatisfactionRating.agent_id, func.count(), func.sum(good_one))
        .where(SatisfactionRating.rated_at.is_not(None), SatisfactionRating.agent_id.is_not(None))
        .group_by(SatisfactionRating.agent_id)
    )
    return {
        int(agent_id): {
            "answered": int(answered),
            "good": int(good or 0),
            "share": int(good or 0) / int(answered) if answered else None,
        }
        for agent_id, answered, good in rows
    }


def summary_words(summary: Mapping[str, Any] | None) -> str:
    """ "12 rated, 75% good" in the reader's language and digits; "—" when none."""
    if not summary or not summary.get("answered"):
        return "—"
    return _(
        "%(count)s rated, %(share)s good",
        count=format_number(summary["answered"]),
        share=format_percent(summary["share"]),
    )


def _history(data: Mapping[str, Any]) -> str:
    words = score_words(str(data.get("scale") or "good_bad"), data.get("score"))
    if data.get("changed"):
        return _("changed the satisfaction rating to %(score)s", score=words)
    return _("rated the help: %(score)s", score=words)


def register(app: Flask) -> None:
    app.add_template_global(ticket_ratings, "ticket_ratings")
    app.add_template_global(by_agent, "satisfaction_by_agent")
    app.add_template_filter(score_words, "satisfaction_words")
    app.add_template_filter(summary_words, "satisfaction_summary")
    audit_labels.register("satisfaction.rated", _history)
    satisfaction_timeline.register()
