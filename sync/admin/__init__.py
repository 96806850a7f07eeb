"""The operations console. Actions only call services; logs and mirrors are read-only."""

from sync.admin import console, links, refresh, systems, wix, work  # noqa: F401 - registers the admins and panels
