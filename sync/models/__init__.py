from sync.models.backfill import BackfillRun
from sync.models.mirrors import Event, MirrorModel, Policy, TicketDefinition
from sync.models.sites import WixSite
from sync.models.webhooks import WebhookDelivery

__all__ = ["BackfillRun", "Event", "MirrorModel", "Policy", "TicketDefinition", "WebhookDelivery", "WixSite"]
