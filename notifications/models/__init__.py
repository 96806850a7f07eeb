from notifications.models.counters import CounterPush, TicketCounter

__all__ = ["CounterPush", "TicketCounter"]
