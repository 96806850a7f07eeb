from notifications.models.campaigns import Notification, SaleStartCampaign
from notifications.models.push import PushEndpoint
from notifications.models.subscribers import EmailSuppression, LocalSubscriber, SiteNotificationSettings
from notifications.models.templates import EmailTemplate

__all__ = [
    "EmailSuppression",
    "EmailTemplate",
    "LocalSubscriber",
    "Notification",
    "PushEndpoint",
    "SaleStartCampaign",
    "SiteNotificationSettings",
]
