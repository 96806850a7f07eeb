"""Pages of every list: ``?limit=&offset=``, both bounded, so no query asks the database for
a slice it cannot represent."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_OFFSET = 10**9


class Pages(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: self.max_limit, self.offset_query_param: MAX_OFFSET}
        for parameter in parameters:
            parameter["schema"]["maximum"] = bounds[parameter["name"]]
        return parameters
