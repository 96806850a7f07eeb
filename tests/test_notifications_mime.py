"""CampaignEmail writes the sale-start message itself: byte for byte what Django would write.

Every example is built twice, by ``CampaignEmail.message()`` and by Django's own
``EmailMultiAlternatives.message()`` given the same boundary and the same clock, and the bytes
are compared for both line ends; where Django refuses a message, so must the fast path.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from notifications.services.mime import CampaignEmail, PrebuiltMessage, header_line

NOW = dt.datetime(2027, 3, 10, 9, 59, 58, tzinfo=dt.UTC)
SENDER = "portal@example.com"
LINK = (
    "https://portal.example.com/notifications/unsubscribe/eyJzIjoxLCJlIjoiYUBleGFtcGxlLmNvbSJ9:1vS2x4:Q9c-_x/"
)

ascii_words = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=90)
any_text = st.text(max_size=90)
with_newlines = st.lists(
    st.one_of(any_text, ascii_words, st.sampled_from(["\n", "\r\n", "\r", "From here", "--===", "é"])),
    max_size=12,
).map("".join)
long_line = st.one_of(  # about Django's 998-byte limit, in ASCII and in 3-byte characters
    st.integers(990, 1010).map(lambda n: "x" * n), st.integers(328, 336).map(lambda n: "€" * n)
)
bodies = st.one_of(with_newlines, st.tuples(with_newlines, long_line, with_newlines).map("".join))
local_parts = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,70}", fullmatch=True), st.just("ñandú"))
domains = st.sampled_from(["example.com", "mail.example.org", "bücher.example", "x" * 60 + ".example"])
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
senders = st.sampled_from(
    ["portal@example.com", "Events Team <events@example.com>", "Équipe Billets <billets@example.com>"]
)
tokens = st.from_regex(r"[A-Za-z0-9_:-]{1,160}", fullmatch=True)


def build(cls: type[EmailMultiAlternatives], **kw: Any) -> EmailMultiAlternatives:
    message = cls(
        subject=kw["subject"],
        body=kw["text"],
        from_email=kw["sender"],
        to=[kw["to"]],
        headers={
            "Message-ID": kw.get("message_id", "<sale-start.1@portal.example.com>"),
            "List-Unsubscribe": f"<{kw.get('link', LINK)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(kw["html"], "text/html")
    return message


def outcome(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:  # what Django refuses, the fast path must refuse the same way
        return type(exc)


def assert_same_as_django(**kw: Any) -> bool:
    """Compare both builds; True if the fast path wrote it."""
    with time_machine.travel(NOW, tick=False):
        fast = outcome(lambda: build(CampaignEmail, **kw).message())
        django = outcome(lambda: build(EmailMultiAlternatives, **kw).message())
        if isinstance(django, type):
            assert fast is django
            return False
        assert not isinstance(fast, type), fast
        for linesep in ("\r\n", "\n"):
            written = fast.as_bytes(linesep=linesep)
            boundary = re.search(rb'boundary="([^"]+)"', written)
            assert boundary is not None
            django.set_boundary(boundary.group(1).decode())
            assert written == django.as_bytes(linesep=linesep)
        return isinstance(fast, PrebuiltMessage)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.one_of(ascii_words, any_text, with_newlines),
    text=bodies,
    html=bodies,
    to=addresses,
    sender=senders,
    token=tokens,
)
@example("Tickets for Spring Gala are on sale", "Hello\n", "<p>Hi</p>\n", "ana@example.com", SENDER, "abc")
@example("x" * 100, "a", "b", "a@example.com", SENDER, "t")
@example("ok", "a\rb\r\nc\n", "é\n\n", "a@example.com", SENDER, "t" * 200)
def test_the_fast_message_is_byte_for_byte_djangos(
    subject: str, text: str, html: str, to: str, sender: str, token: str
) -> None:
    assume(text)  # Django leaves out an empty text part; the fast path hands that shape to it
    assert_same_as_django(
        subject=subject,
        text=text,
        html=html,
        to=to,
        sender=sender,
        link=f"https://portal.example.com/u/{token}/",
    )


def test_a_typical_sale_start_email_takes_the_fast_path_and_reads_back() -> None:
    kw = {
        "subject": "Tickets for Spring Gala are on sale: General Admission",
        "text": "Hello Ana,\n\nTickets go on sale on Monday 10 March 2027, 10:00 (Europe/Lisbon).\n",
        "html": "<p>Hello Ana,</p>\n<p>Preço: 25.00 EUR</p>\n",
        "to": "ana@example.com",
        "sender": "Events Team <events@example.com>",
    }
    assert assert_same_as_django(**kw) is True
    parsed = email.message_from_bytes(
        build(CampaignEmail, **kw).message().as_bytes(linesep="\n"), policy=email.policy.default
    )
    assert parsed["List-Unsubscribe"].strip() == f"<{LINK}>"  # folded onto its own line, as Django does
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == "<sale-start.1@portal.example.com>"
    plain, html = parsed.get_payload()
    assert plain.get_content() == kw["text"]
    assert html.get_content() == kw["html"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.attach("a.txt", "x", "text/plain"), "an attachment"),
        (lambda m: setattr(m, "cc", ["b@example.com"]), "a Cc"),
        (lambda m: m.extra_headers.pop("Message-ID"), "no Message-ID: Django makes one up"),
        (lambda m: setattr(m, "body", "x" * 1200), "a line Django sends quoted-printable"),
        (lambda m: setattr(m, "encoding", "iso-8859-1"), "another charset"),
    ],
)
def test_other_shapes_are_built_by_django(change: Callable[[Any], Any], why: str) -> None:
    message = build(CampaignEmail, subject="s", text="t", html="h", to="a@example.com", sender=SENDER)
    change(message)
    assert not isinstance(message.message(), PrebuiltMessage), why


def test_a_header_with_a_newline_is_refused_as_django_refuses_it() -> None:
    message = build(
        CampaignEmail, subject="Hi\nBcc: x@evil.example", text="t", html="h", to="a@ex.com", sender="p@ex.com"
    )
    with pytest.raises(mail.BadHeaderError):
        message.message()


def test_the_prebuilt_message_answers_like_djangos_for_everything_else() -> None:
    message = build(CampaignEmail, subject="Hello", text="t", html="h", to="a@example.com", sender=SENDER)
    built = message.message()
    assert isinstance(built, PrebuiltMessage)
    assert built["Subject"] == "Hello"
    assert "List-Unsubscribe" in built
    assert built.is_multipart()
    assert [part.get_content_type() for part in built.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]


@given(name=st.sampled_from(["To", "X-Long-Header-Name", "List-Unsubscribe"]), value=ascii_words | tokens)
def test_headers_written_as_is_are_what_the_stdlib_folds(name: str, value: str) -> None:
    from notifications.services.mime import _header_folded

    assert header_line(name, value) == _header_folded(name, value, "utf-8", "\r\n")


def test_the_locmem_and_console_backends_take_it(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.mail import get_connection

    message = build(CampaignEmail, subject="Hello", text="t", html="h", to="a@example.com", sender=SENDER)
    get_connection("django.core.mail.backends.console.EmailBackend").send_messages([message])
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in capsys.readouterr().out
    get_connection("django.core.mail.backends.locmem.EmailBackend").send_messages([message])
    kept = mail.outbox[-1]
    assert (kept.subject, kept.to, kept.alternatives) == ("Hello", ["a@example.com"], [("h", "text/html")])
    assert kept.message()["To"] == "a@example.com"
