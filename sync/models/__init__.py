from sync.models.alerts import TargetAlert
from sync.models.backfill import BackfillRun, BackfillStep, ReconciliationRun
from sync.models.external import (
    DriftAction,
    EntityType,
    ExternalEndpoint,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    OutboundWork,
    SyncLog,
)
from sync.models.mirrors import Event, MirrorChange, MirrorModel, Policy, TicketDefinition
from sync.models.refresh import TicketDefinitionRefresh
from sync.models.sites import WixSite
from sync.models.webhooks import WebhookDelivery

__all__ = [
    "BackfillRun",
    "BackfillStep",
    "DriftAction",
    "EntityType",
    "Event",
    "ExternalEndpoint",
    "ExternalLink",
    "ExternalSystem",
    "FieldMapping",
    "LinkRepair",
    "MirrorChange",
    "MirrorModel",
    "OutboundWork",
    "Policy",
    "ReconciliationRun",
    "SyncLog",
    "TargetAlert",
    "TicketDefinition",
    "TicketDefinitionRefresh",
    "WebhookDelivery",
    "WixSite",
]
