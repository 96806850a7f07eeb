"""The notifications pages of the admin: campaigns, their ledger, the local list, consent, sources,
the live ticket counters."""

from notifications.admin import campaigns, console, sources, subscribers  # noqa: F401 - registers the admins
from notifications.counters import admin as counters_admin  # noqa: F401 - registers the counter admins
from notifications.counters import console as counters_console  # noqa: F401 - registers the counters panel
