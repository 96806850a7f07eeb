"""Reads the admin needs that span several tables: an entity's timeline, the console's figures."""

from sync.selectors.timeline import TIMELINE_LIMIT, TimelineEntry, entity_timeline

__all__ = ["TIMELINE_LIMIT", "TimelineEntry", "entity_timeline"]
