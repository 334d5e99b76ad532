"""The domain model: one module per aggregate, all re-exported here."""

from helpdesk.models._types import (
    AgentRole,
    ChannelKind,
    ChannelStatus,
    DeliveryStatus,
    Direction,
    IdentityKind,
    MessageKind,
    Priority,
    TicketStatus,
)
from helpdesk.models.agents import Agent, AssignmentMode, Team, team_members
from helpdesk.models.api_tokens import ApiToken, IdempotencyKey, TokenScope
from helpdesk.models.audit import AuditEvent
from helpdesk.models.calendars import Calendar, CalendarHoliday
from helpdesk.models.channels import Channel
from helpdesk.models.custom_fields import CustomField, FieldObject, FieldType
from helpdesk.models.customers import (
    Customer,
    CustomerIdentity,
    Organization,
    OrganizationDomain,
)
from helpdesk.models.events import Event, EventConsumer, EventCounter
from helpdesk.models.macros import Macro
from helpdesk.models.messages import Attachment, Message
from helpdesk.models.notifications import Notification
from helpdesk.models.outbound import OutboundMail
from helpdesk.models.presence import AgentConnection, AgentPresence, PresenceStatus
from helpdesk.models.rules import Rule, RuleKind
from helpdesk.models.satisfaction import SatisfactionRating
from helpdesk.models.search import TABLE as SEARCH_TABLE  # noqa: F401  (index DDL)
from helpdesk.models.sla import SlaPolicy
from helpdesk.models.tasks import Recurrence, Task, TaskStatus
from helpdesk.models.ticket_presence import TicketViewer
from helpdesk.models.tickets import Tag, Ticket, TicketCounter, ticket_participants, ticket_tags
from helpdesk.models.views import AgentPreference, SavedView, TicketCount
from helpdesk.models.webhooks import DeliveryState, Webhook, WebhookDelivery

__all__ = [
    "Agent",
    "AgentConnection",
    "AgentPreference",
    "AgentPresence",
    "AgentRole",
    "ApiToken",
    "AssignmentMode",
    "Attachment",
    "AuditEvent",
    "Calendar",
    "CalendarHoliday",
    "Channel",
    "ChannelKind",
    "ChannelStatus",
    "CustomField",
    "Customer",
    "CustomerIdentity",
    "DeliveryState",
    "DeliveryStatus",
    "Direction",
    "Event",
    "EventConsumer",
    "EventCounter",
    "FieldObject",
    "FieldType",
    "IdempotencyKey",
    "IdentityKind",
    "Macro",
    "Message",
    "MessageKind",
    "Notification",
    "Organization",
    "OrganizationDomain",
    "OutboundMail",
    "PresenceStatus",
    "Priority",
    "Recurrence",
    "Rule",
    "RuleKind",
    "SatisfactionRating",
    "SavedView",
    "SlaPolicy",
    "Tag",
    "Task",
    "TaskStatus",
    "Team",
    "Ticket",
    "TicketCount",
    "TicketCounter",
    "TicketStatus",
    "TicketViewer",
    "TokenScope",
    "Webhook",
    "WebhookDelivery",
    "team_members",
    "ticket_participants",
    "ticket_tags",
]
