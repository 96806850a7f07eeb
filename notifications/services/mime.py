"""The sale-start email's wire form, built without the ``email`` package's generator.

Django's ``EmailMessage.message()`` builds a tree of MIME objects and the standard library's
generator folds every header through ``email.header.Header``: 0.8 ms an email, more than the
rest of a send together (the send benchmark's profile). A campaign's messages all have one
shape (a text part, an HTML alternative, a handful of headers), so :class:`CampaignEmail`
writes that shape directly, **byte for byte what Django would write** (the tests compare the
two over generated subjects, names, bodies and addresses), and hands anything outside the
shape to Django's own ``message()``:

- a header is written as is where the stdlib would write it unchanged (printable ASCII that
  fits the line, or one word too long to fold); any other header goes through Django's
  checks and the stdlib's folding, exactly as ``message()`` would (cached: the sender and
  a campaign's subject are the same for every recipient);
- a body with a line over 998 bytes (Django switches it to quoted-printable), attachments,
  Cc/Reply-To, another charset or a header override of From/To: Django builds the message.

The message stays a real ``EmailMultiAlternatives`` (subject, body, alternatives, headers),
so backends that read those attributes (django-anymail's ESPs, the locmem outbox) work
unchanged, and a backend that calls ``message()`` gets an object whose ``as_bytes()`` is the
prebuilt form; anything else asked of it is answered by the message Django builds.
"""

from __future__ import annotations

import functools
import random
import re
import sys
from collections.abc import Callable, Iterator
from email.message import Message
from email.policy import compat32
from email.utils import formatdate
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT, forbid_multi_line_headers

# The stdlib folds at 78 columns (compat32's max_line_length).
MAX_LINE = 78
# A boundary like the stdlib's: fifteen "=", the token zero-padded to sys.maxsize's width, "==".
_TOKEN_WIDTH = len(repr(sys.maxsize - 1))
_BOUNDARY_LENGTH = 15 + _TOKEN_WIDTH + 2
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
_ONE_WORD = re.compile(r"[\x21-\x7e]+\Z")
_NEWLINES = re.compile(r"\r\n|\r|\n")  # the generator's NLCRE
_HANDLED = {"from", "to", "cc", "reply-to"}  # message() sets these itself


def header_line(name: str, value: str, *, encoding: str = "utf-8", linesep: str = "\r\n") -> bytes:
    """``name: value`` as Django's message and the stdlib's generator write it, folded."""
    if "\n" not in value and "\r" not in value:
        if len(name) + 2 + len(value) <= MAX_LINE and _PRINTABLE.match(value):
            return f"{name}: {value}{linesep}".encode("ascii")
        # One word too long for the line: the stdlib moves it to a line of its own (Django
        # encodes a Subject once more first, so that one takes the exact way).
        if name.lower() != "subject" and _ONE_WORD.match(value):
            return f"{name}: {linesep} {value}{linesep}".encode("ascii")
    return _header_folded(name, value, encoding, linesep)


def _content_type_line(boundary: str, linesep: str) -> bytes:
    value = f'multipart/alternative; boundary="{boundary}"'
    if len(boundary) == _BOUNDARY_LENGTH:  # too long for one line: folded after the ";"
        return f'Content-Type: multipart/alternative;{linesep} boundary="{boundary}"{linesep}'.encode()
    return _header_folded("Content-Type", value, "utf-8", linesep)


@functools.lru_cache(maxsize=256)
def _header_folded(name: str, value: str, encoding: str, linesep: str) -> bytes:
    """The slow, exact way: Django's header check and encoding (``BadHeaderError`` for a
    newline), then the stdlib's folding, as ``message().as_bytes()`` does."""
    name, checked = forbid_multi_line_headers(name, value, encoding)
    folded: bytes = compat32.clone(linesep=linesep).fold_binary(name, checked)
    return folded


def _has_long_lines(text: str) -> bool:
    # Django's own test (SafeMIMEText.set_payload): such a body is sent quoted-printable. A line
    # is at most 4 bytes a character: the exact test only where a line could be too long.
    lines = text.splitlines()
    if max(map(len, lines), default=0) * 4 <= RFC5322_EMAIL_LINE_LENGTH_LIMIT:
        return False
    return any(len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in lines)


def _text_part(text: str, subtype: str, linesep: str) -> bytes | None:
    """One text part (headers and body) as the generator writes it; None where Django would
    write it otherwise (quoted-printable for long lines, or text that is not UTF-8)."""
    if _has_long_lines(text):
        return None
    try:  # every line end becomes linesep, as the generator splits and rejoins the lines
        body = linesep.join(_NEWLINES.split(text)).encode("utf-8")
    except UnicodeEncodeError:
        return None
    cte = "7bit" if body.isascii() else "8bit"
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{linesep}'
        f"MIME-Version: 1.0{linesep}"
        f"Content-Transfer-Encoding: {cte}{linesep}{linesep}"
    ).encode("ascii")
    return head + body


def _boundary(parts: list[bytes]) -> str:
    while True:
        token = random.randrange(sys.maxsize)  # noqa: S311 - a boundary, not a secret (as the stdlib)
        boundary = f"{'=' * 15}{token:0{_TOKEN_WIDTH}d}=="
        if not any(b"--" + boundary.encode() in part for part in parts):
            return boundary


class PrebuiltMessage:
    """What ``CampaignEmail.message()`` returns: its bytes built directly; for anything but
    ``as_bytes()`` the ``email.message.Message`` Django builds (made on first use)."""

    def __init__(self, render: Callable[[str], bytes], full: Callable[[], Message]) -> None:
        self._render = render
        self._full_build = full
        self._full: Message | None = None

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        if unixfrom:
            return self.full.as_bytes(unixfrom=True, linesep=linesep)  # type: ignore[call-arg]
        return self._render(linesep)

    def __bytes__(self) -> bytes:
        return self.as_bytes()

    def get_charset(self) -> None:
        return None  # a multipart message has no charset of its own (the console backend asks)

    @property
    def full(self) -> Message:
        if self._full is None:
            self._full = self._full_build()
        return self._full

    def __getattr__(self, name: str) -> Any:
        return getattr(self.full, name)

    def __getitem__(self, name: str) -> Any:
        return self.full[name]

    def __contains__(self, name: str) -> bool:
        return name in self.full

    def __iter__(self) -> Iterator[str]:
        return iter(self.full)

    def __len__(self) -> int:
        return len(self.full)

    def __str__(self) -> str:
        return str(self.full)


class CampaignEmail(EmailMultiAlternatives):
    """An ``EmailMultiAlternatives`` whose ``message()`` is written directly when it has the
    campaign's shape (see the module's docstring), and built by Django otherwise."""

    def message(self, **options: Any) -> Any:
        render = None if options else self._render_fast()
        if render is None:
            return super().message(**options)
        return PrebuiltMessage(render, super().message)

    def _render_fast(self) -> Callable[[str], bytes] | None:
        """A function of ``linesep`` giving the message's bytes, or None off the fast path.

        The checks and the per-message values (Date, boundary) are settled here, once, so that
        every ``as_bytes()`` of one ``message()`` agrees, as one Django message object would."""
        encoding = self.encoding or settings.DEFAULT_CHARSET
        if (
            encoding != "utf-8"
            or self.attachments
            or self.cc
            or self.reply_to
            or not self.body
            or not self.to
            or self.content_subtype != "plain"
            or getattr(self, "alternative_subtype", None) != "alternative"
            or len(self.alternatives) != 1
            or self.alternatives[0][1] != "text/html"
            or not isinstance(self.body, str)
            or not isinstance(self.alternatives[0][0], str)
            or any(name.lower() in _HANDLED for name in self.extra_headers)
            or not isinstance(self.subject, str)
        ):
            return None
        headers: list[tuple[str, str]] = [
            ("Subject", self.subject),
            ("From", str(self.from_email)),
            ("To", ", ".join(str(v) for v in self.to)),
        ]
        names = {name.lower() for name in self.extra_headers}
        if "date" not in names:
            headers.append(("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
        if "message-id" not in names:
            return None  # Django would make one up (a DNS lookup): the ledger always gives one
        headers += [(name, str(value)) for name, value in self.extra_headers.items()]
        text, html = self.body, self.alternatives[0][0]
        # Written with CRLF (what SMTP sends) now: an off-path part or a refused header shows
        # here, as message() would show it; another linesep is written when asked for.
        crlf_parts = [_text_part(text, "plain", "\r\n"), _text_part(html, "html", "\r\n")]
        if crlf_parts[0] is None or crlf_parts[1] is None:
            return None
        boundary = _boundary(crlf_parts)  # type: ignore[arg-type]
        crlf_headers = [header_line(name, value, encoding=encoding) for name, value in headers]

        def render(linesep: str) -> bytes:
            if linesep == "\r\n":
                parts, lines = crlf_parts, crlf_headers
            else:
                parts = [_text_part(text, "plain", linesep), _text_part(html, "html", linesep)]
                lines = [
                    header_line(name, value, encoding=encoding, linesep=linesep) for name, value in headers
                ]
            nl = linesep.encode()
            out = [_content_type_line(boundary, linesep), f"MIME-Version: 1.0{linesep}".encode(), *lines]
            dash = f"--{boundary}".encode()
            out += [nl, dash, nl, parts[0], nl, dash, nl, parts[1], nl, dash, b"--", nl]  # type: ignore[list-item]
            return b"".join(out)

        return render
