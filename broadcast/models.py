"""Every table, imported in one place for Alembic and for ``SQLModel.metadata``."""

from broadcast.areas.models import Area
from broadcast.audit import AuditEvent
from broadcast.auth.models import ConsoleSession, Role, User
from broadcast.delivery.models import Delivery, DeliveryState, DirectMessage, EarlyReceipt
from broadcast.duty.models import DutyShift, OfficerChat, PromiseReminder
from broadcast.feeds.models import (
    FeedAlert,
    FeedForecast,
    FeedReading,
    FeedRuleState,
    FeedSource,
)
from broadcast.inbound.models import InboundMessage
from broadcast.incidents.models import Incident, IncidentStatus, Instruction
from broadcast.keys import InstallationKey
from broadcast.library.models import StoredTemplate
from broadcast.media.models import MediaItem, MediaKind
from broadcast.questions.models import Question, QuestionState
from broadcast.ratelimit import RateEvent
from broadcast.relay.models import Relay
from broadcast.signup.models import SmsSignup
from broadcast.subscribers.models import Subscriber, SubscriberArea, SubscriberState
from broadcast.timeline.models import Source, Update, UpdateKind, UpdateState

__all__ = [
    "Area",
    "AuditEvent",
    "ConsoleSession",
    "Delivery",
    "DeliveryState",
    "DirectMessage",
    "DutyShift",
    "EarlyReceipt",
    "FeedAlert",
    "FeedForecast",
    "FeedReading",
    "FeedRuleState",
    "FeedSource",
    "InboundMessage",
    "Incident",
    "IncidentStatus",
    "InstallationKey",
    "Instruction",
    "MediaItem",
    "MediaKind",
    "OfficerChat",
    "PromiseReminder",
    "Question",
    "QuestionState",
    "RateEvent",
    "Relay",
    "Role",
    "SmsSignup",
    "StoredTemplate",
    "Source",
    "Subscriber",
    "SubscriberArea",
    "SubscriberState",
    "Update",
    "UpdateKind",
    "UpdateState",
    "User",
]
