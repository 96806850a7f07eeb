"""Endpoint paths of a generic REST system: what staff may write, and how an id goes in."""

from __future__ import annotations

import re

EXTERNAL_ID = "{external_id}"
# What a path may hold besides the placeholder: RFC 3986 path and query characters. No
# braces (str.format would reach into attributes: {external_id.__class__.__mro__}), no
# whitespace, no "//" that could start another host.
_PATH_RE = re.compile(r"^[A-Za-z0-9\-._~/%:@!$&'()*+,;=?]*$")


def endpoint_path_check(path: str, *, takes_id: bool) -> str | None:
    """What is wrong with an endpoint path, or None. ``{external_id}`` only where an id exists."""
    rest = path.replace(EXTERNAL_ID, "") if takes_id else path
    if "{" in rest or "}" in rest:
        allowed = f"Only {EXTERNAL_ID} may be used" if takes_id else "A create path takes no placeholder"
        return f"{allowed}; it is replaced by the record's id, URL-quoted."
    if not _PATH_RE.match(rest) or "//" in rest or "://" in rest:
        return "Use a path relative to the base URL (letters, digits and URL punctuation, no spaces)."
    return None
