"""The widget's user-facing strings, through gettext like every other screen.

``/chat/widget.js`` carries them for every UI language, so the widget (on any site, no request
back) switches between English and Bengali by its ``data-language``, the page's ``lang`` or the
browser's language.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import force_locale

from helpdesk.i18n import _l

STRINGS = {
    "open": _l("Chat with us"),
    "close": _l("Close chat window"),
    "title": _l("Chat with support"),
    "intro": _l("Ask us anything. We usually answer within minutes."),
    "name": _l("Your name"),
    "name_optional": _l("Your name (optional)"),
    "email": _l("Your email"),
    "email_optional": _l("Your email (optional)"),
    "question": _l("Your question"),
    "start": _l("Start chat"),
    "send": _l("Send"),
    "message": _l("Type your message"),
    "attach": _l("Attach a file"),
    "suggest_title": _l("Does this answer it?"),
    "suggest_yes": _l("Yes, thanks"),
    "suggest_no": _l("No, chat with a person"),
    "waiting": _l("Waiting for an agent…"),
    "position": _l("You are number %(n)s in line."),
    "offered": _l("Connecting you to an agent…"),
    "joined": _l("%(name)s joined the chat."),
    "typing": _l("%(name)s is typing…"),
    "agent": _l("Support"),
    "you": _l("You"),
    "sent": _l("Sent"),
    "sending": _l("Sending…"),
    "delivered": _l("Delivered"),
    "read": _l("Read"),
    "end": _l("End chat"),
    "ended": _l("The chat has ended. We will answer any later message by email."),
    "transcript": _l("Email me the transcript"),
    "transcript_sent": _l("The transcript is on its way to your inbox."),
    "offline_title": _l("Leave us a message"),
    "offline_intro": _l(
        "No one is available right now. Leave a message and we will answer by email."
    ),
    "offline_send": _l("Send message"),
    "offline_done": _l("Thank you. Your ticket number is #%(n)s; we will answer by email."),
    "reconnecting": _l("Connection lost. Reconnecting…"),
    "required": _l("Please fill in this field."),
    "conversation": _l("Conversation"),
    "too_big": _l("The file is too large."),
    "too_long": _l("Your message is too long: at most %(n)s characters."),
    # The rating at the chat's end (channels/chat/satisfaction.py, widget_rating.js).
    "rate_title": _l("How was this chat?"),
    "rate_good": _l("Good"),
    "rate_bad": _l("Bad"),
    "rate_5": _l("5 – Excellent"),
    "rate_4": _l("4 – Good"),
    "rate_3": _l("3 – Okay"),
    "rate_2": _l("2 – Poor"),
    "rate_1": _l("1 – Very poor"),
    "rate_comment": _l("Anything you want to tell us? (optional)"),
    "rate_send": _l("Send my rating"),
    "rate_thanks": _l("Thanks for your rating!"),
}  # fmt: skip


def catalog(app: Flask) -> dict[str, dict[str, str]]:
    """``{language: {key: text}}`` for every UI language."""
    out: dict[str, dict[str, str]] = {}
    with app.app_context():
        for lang in app.config["LANGUAGES"]:
            with force_locale(lang):
                out[lang] = {key: str(text) for key, text in STRINGS.items()}
    return out
