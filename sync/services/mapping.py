"""Mappings in the database: a new system's defaults. The mapping language itself (paths,
transforms, validation) is pure and lives in ``sync.domain.mapping``."""

from __future__ import annotations

from typing import Any

from sync.domain.mapping import MappingRow
from sync.models import FieldMapping


def mappings_seed(system: Any, defaults: dict[str, list[MappingRow]]) -> int:
    """Give a system without mappings its defaults, each validated as the admin would."""
    if FieldMapping.objects.filter(system=system).exists():
        return 0
    created = 0
    for entity_type, rows in defaults.items():
        for order, (source, target, transform, argument, required) in enumerate(rows):
            mapping = FieldMapping(
                system=system,
                entity_type=entity_type,
                source_path=source,
                target_field=target,
                transform=transform,
                argument=argument,
                required=required,
                order=order,
            )
            mapping.full_clean()
            mapping.save()
            created += 1
    return created
