from notifications.models.campaigns import Notification, SaleStartCampaign
from notifications.models.counters import CounterPush, TicketCounter
from notifications.models.push import PushEndpoint
from notifications.models.sources import MailchimpRule, MailchimpSource, RestSource
from notifications.models.subscribers import EmailSuppression, LocalSubscriber, SiteNotificationSettings
from notifications.models.templates import EmailTemplate

__all__ = [
    "CounterPush",
    "EmailSuppression",
    "EmailTemplate",
    "LocalSubscriber",
    "MailchimpRule",
    "MailchimpSource",
    "Notification",
    "PushEndpoint",
    "RestSource",
    "SaleStartCampaign",
    "SiteNotificationSettings",
    "TicketCounter",
]
