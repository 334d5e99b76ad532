"""Registers each channel's outbound sender with the core (called from ``create_app``)."""

from __future__ import annotations

from flask import Flask

from helpdesk.models import ChannelKind
from helpdesk.services.outbox import register_sender


def register_senders(app: Flask, *, web: bool = True) -> None:
    """``web=False`` (an app without the web layer: one-off commands, which deliver nothing):
    no chat sender, whose room emits need Socket.IO."""
    from channels.email.smtp import EmailSender
    from channels.portal.mail import PortalSender

    email = EmailSender(app)
    register_sender(app, ChannelKind.EMAIL, email)
    # A portal ticket's replies reach the customer as a notification mail with a magic link
    # to the ticket on the portal.
    register_sender(app, ChannelKind.PORTAL, PortalSender(app))
    if web:
        from channels.chat.sender import ChatSender

        # A chat line goes to the visitor's room; after the chat ends (or for a transcript)
        # by mail.
        register_sender(app, ChannelKind.CHAT, ChatSender(app, mail=email))
    # The invitation of a new agent (outbox mail that is no ticket message).
    from functools import partial

    from channels.email.staff_mail import compose_agent_invite
    from helpdesk.services.agents import INVITE_PURPOSE
    from helpdesk.services.outbox import register_mail_composer

    register_mail_composer(app, INVITE_PURPOSE, partial(compose_agent_invite, app))
    # The admins' mail about a webhook the helpdesk disabled after a run of failures.
    from channels.email.webhook_mail import compose_webhook_disabled
    from helpdesk.services.webhook_delivery import DISABLED_PURPOSE

    register_mail_composer(app, DISABLED_PURPOSE, partial(compose_webhook_disabled, app))
    # A task's reminder to its assignee.
    from channels.email.task_mail import compose_task_reminder
    from helpdesk.services.reminders import REMINDER_PURPOSE

    register_mail_composer(app, REMINDER_PURPOSE, partial(compose_task_reminder, app))
    # A resolved ticket's satisfaction survey, with one link per score to the portal.
    from channels.email.satisfaction_mail import compose_satisfaction_request
    from helpdesk.services.satisfaction import REQUEST_MAIL

    register_mail_composer(app, REQUEST_MAIL, partial(compose_satisfaction_request, app))
    # An automation rule's mail (send_email action) to the customer, the assignee or the team.
    from channels.email.rule_mail import compose_rule_mail
    from helpdesk.services.rules import RULE_MAIL

    register_mail_composer(app, RULE_MAIL, partial(compose_rule_mail, app))


def register_email(app: Flask, *, web: bool = True) -> None:
    """The email channel's inbound side: replay pipeline, IMAP watchers in the worker, CLI,
    and (``web``) its admin pages."""
    from channels.email import cli, imap, ingest
    from channels.email import models as _models  # noqa: F401  (its tables on Base.metadata)
    from channels.email.services import register_pipeline
    from helpdesk import worker
    from helpdesk.services.inbound import register_post_receive

    register_pipeline(app, ingest.pipeline)
    for step in ingest.POST_RECEIVE_STEPS:  # bounce reports, acknowledgements
        register_post_receive(step)
    if web:
        from channels.email import admin

        app.register_blueprint(admin.bp)  # mailboxes and the quarantine, under /admin
    worker.register_service(app, imap.start_watchers)
    for command in cli.COMMANDS:
        app.cli.add_command(command)


def register_chat(app: Flask, *, web: bool = True) -> None:
    """The chat channel: its tables, the widget and ``/chat``, its events on the agents'
    namespace (``web``), and the hooks through which the core tells chat routing what it must
    know (the core never imports ``channels``)."""
    import channels.chat.models  # noqa: F401  (registers the chat's tables on Base.metadata)
    from channels.chat import routing
    from helpdesk.services import assignment, presence

    if web:
        from channels.chat import agent_events, init_app

        init_app(app)
        agent_events.register()  # chat.accept, chat.send, ... on /agent
    # An agent who arrives takes waiting chats; one who leaves has their offers moved on.
    presence.on_presence_changed(routing.presence_changed)
    # A live chat is offered by chat routing, never auto-assigned.
    assignment.register_exclusion(routing.is_live_chat)
    # The customer timeline shows each chat with the page the visitor was on.
    from channels.chat import timeline as chat_timeline

    chat_timeline.register()
