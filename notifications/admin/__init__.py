"""The notifications pages of the admin: campaigns, their ledger, the local list, consent, sources."""

from notifications.admin import campaigns, console, sources, subscribers  # noqa: F401 - registers the admins
