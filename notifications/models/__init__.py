from notifications.models.sources import MailchimpRule, MailchimpSource, RestSource

__all__ = ["MailchimpRule", "MailchimpSource", "RestSource"]
