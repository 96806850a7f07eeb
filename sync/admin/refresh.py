"""Ticket definition refreshes (Order Confirmed → one coalesced Get): read-only, for staff to
see what waits, how many orders each Get answers, and what Wix said when one failed."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString

from portal.admin_utils import ReadOnlyAdmin
from sync.admin.common import badge
from sync.models import TicketDefinitionRefresh


@admin.register(TicketDefinitionRefresh)
class TicketDefinitionRefreshAdmin(ReadOnlyAdmin):
    console_section, console_order = "internal", 40
    list_display = ["wix_id", "status_badge", "orders", "attempts", "outcome", "last_error", "created_at"]
    list_filter = ["status"]
    list_select_related = ["site"]
    search_fields = ["wix_id"]
    show_full_result_count = False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: TicketDefinitionRefresh) -> SafeString:
        return badge(obj.status, obj.get_status_display())
