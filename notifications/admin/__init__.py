"""The notifications pages of the admin: campaigns, their ledger, the local list, consent."""

from notifications.admin import campaigns, console, subscribers  # noqa: F401 - registers the admins
