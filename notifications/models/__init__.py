from notifications.models.counters import CounterPush, TicketCounter
from notifications.models.sources import MailchimpRule, MailchimpSource, RestSource

__all__ = ["CounterPush", "MailchimpRule", "MailchimpSource", "RestSource", "TicketCounter"]
