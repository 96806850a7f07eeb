"""A campaign's emails, recipient after recipient: rendered once and filled in where that gives
the same text as rendering each one in full, rendered in full everywhere else."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import signing
from hypothesis import given
from hypothesis import strategies as st

from notifications.services.emails import (
    UNSUBSCRIBE_SALT,
    RecipientRenderer,
    Templates,
    sample_context,
    templates_default,
    templates_render,
    unsubscribe_token,
    unsubscribe_token_read,
)

names = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.sampled_from(['Ana <b>&amp; "Zé"', "O'Brien", "  ", "a\nb", "{{ name }}", "\x00"]),
)
links = st.from_regex(r"https://portal\.example\.com/u/[A-Za-z0-9_:&<>-]{0,60}/", fullmatch=True)


def campaign_context() -> dict[str, Any]:
    context = sample_context()
    del context["name"], context["unsubscribe_url"]
    context["event"]["title"] = 'Gala <Spring> & "Friends"'
    return context


PLAIN = {
    "default": None,  # the templates the portal ships
    "tests and lookups": Templates(
        subject="Hi {% if not name %}friend{% else %}{{ name }}{% endif %}: {{ event.title }}",
        text_body="{% for t in tickets %}{{ t.name }} {{ t.price }}{% endfor %} {{ name }}{{ name }}",
        html_body="{% with x=event.title %}{{ x }}{% endwith %} "
        '<a href="{{ unsubscribe_url }}">{{ name }}</a>'
        "{% if unsubscribe_url %}!{% endif %}{# {{ name|upper }} is a comment #}",
    ),
}
IN_FULL = {
    "a filter": "{{ name|upper }}",
    "a comparison": '{% if name == "Ana" %}hi{% endif %}',
    "autoescape off": "{% autoescape off %}{{ name }}{% endautoescape %}",
    "a loop variable of that name": "{% for name in tickets %}{{ name.name }}{% endfor %}{{ name }}",
    "a default from it": "{{ event.missing|default:name }}",
    "with": "{% with n=name %}{{ n }}{% endwith %}",
    "spaceless": "{% spaceless %}<p> {{ name }} </p>{% endspaceless %}",
    "a filter block": "{% filter lower %}{{ name }}{% endfilter %}",
}


@pytest.mark.parametrize("label", PLAIN)
@given(name=names, link=links)
def test_filled_in_copies_are_what_a_full_render_gives(label: str, name: str, link: str) -> None:
    templates = PLAIN[label] or templates_default()
    renderer = RecipientRenderer(templates, campaign_context())
    assert renderer.plain, label
    expected = templates_render(templates, {**campaign_context(), "name": name, "unsubscribe_url": link})
    assert renderer.render(name=name, unsubscribe_url=link) == expected


@pytest.mark.parametrize("label", IN_FULL)
@given(name=names)
def test_other_uses_of_the_recipients_values_are_rendered_in_full(label: str, name: str) -> None:
    templates = Templates(subject="Tickets", text_body=IN_FULL[label], html_body=IN_FULL[label])
    renderer = RecipientRenderer(templates, campaign_context())
    assert not renderer.plain, label
    values = {"name": name, "unsubscribe_url": "https://portal.example.com/u/t/"}
    assert renderer.render(**values) == templates_render(templates, {**campaign_context(), **values})


def test_the_shared_signer_signs_as_signing_dumps_would(site: Any) -> None:
    shared = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)
    token = unsubscribe_token(site=site, email="ana@example.com", signer=shared)
    assert unsubscribe_token_read(token) == (site.pk, "ana@example.com")
    assert (
        token.split(":")[0]
        == signing.dumps({"s": site.pk, "e": "ana@example.com"}, salt=UNSUBSCRIBE_SALT).split(":")[0]
    )
