"""pretix: Wix events, ticket definitions and policies as pretix events, items and confirm texts.

What maps to what (the default field mappings are ``PRETIX_DEFAULT_MAPPINGS`` in
``sync.services.adapters.pretix``; staff change them in the admin, and the payload keys are
pretix's own API fields):

- a Wix event → a pretix event; the adapter always adds ``meta_data.wix_event_id``.
- a ticket definition → an item, plus keys the adapter expands: ``variations[*]`` (one
  variation per pricing option, tagged with ``meta_data.wix_option_id``), ``guest_price`` (a
  free-price item whose ``default_price`` is the minimum) and ``quota.size`` (a quota of the
  item; absent means unlimited). The item gets ``meta_data.wix_ticket_definition_id``.
- a policy → one entry of the event's ``confirm_texts``. pretix keeps a plain list, so every
  policy push sends the whole list, rebuilt in Wix order from the event's live policies.

Links: an event's external id is its slug; a ticket definition's is ``slug/item/quota``; a
policy's is ``slug/confirm_texts/<wix id>``. pretix has no Idempotency-Key, so a create first
looks for the record by the Wix id in its meta data: a retry after a worker died between
the create and the link adopts the record instead of making a second one.

pretix answers 403, not 404, for an event that does not exist (its permission check runs
first), so a 403 is read as "gone" only after the event is looked up by its Wix id at
organizer level. A record deleted by hand is recreated, and the push records the new id with
a LinkRepair row saying why.
"""

from sync.clients.pretix.client import ItemRef, PretixClient, PretixConfig
from sync.clients.pretix.connection import ConnectionCheck, pretix_connection_check
from sync.clients.pretix.protocol import pretix_slug

__all__ = [
    "ConnectionCheck",
    "ItemRef",
    "PretixClient",
    "PretixConfig",
    "pretix_connection_check",
    "pretix_slug",
]
