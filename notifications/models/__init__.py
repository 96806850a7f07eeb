from notifications.models.campaigns import Notification, SaleStartCampaign
from notifications.models.subscribers import EmailSuppression, LocalSubscriber, SiteNotificationSettings
from notifications.models.templates import EmailTemplate

__all__ = [
    "EmailSuppression",
    "EmailTemplate",
    "LocalSubscriber",
    "Notification",
    "SaleStartCampaign",
    "SiteNotificationSettings",
]
