"""A Mailchimp audience as a subscriber source.

Opted in for an event: members with status ``subscribed`` matched by a rule for that event
or for all events (a rule takes members with a tag, members in an interest group, or every
subscribed member). With no rule, nobody is opted in: subscribing to a newsletter audience
is not, by itself, asking for sale-start emails. Opted out: members ``unsubscribed``, and
``cleaned`` ones (Mailchimp's word for an address that bounced or complained: nothing
should be sent to it from anywhere).

Failures: a wrong key, a key that may not read the audience, a wrong audience id or a tag
that does not exist raise :class:`SourceBlocked` with Mailchimp's own words (staff must
act; the campaign shows why); 429, 5xx and network trouble are retried in place, then raise
:class:`SourceError` (the caller retries later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from notifications.clients.base import RetryingHttp, SourceClientError
from notifications.clients.mailchimp import MailchimpClient, member_name
from notifications.models import MailchimpRule, MailchimpSource
from notifications.sources.base import (
    SourceBlocked,
    SourceError,
    Subscriber,
    SubscriberSource,
    email_normalise,
)
from notifications.sources.guard import ConnectionReport, source_guarded
from portal.secrets import MissingSecret, secret_read

if TYPE_CHECKING:
    from sync.models import WixSite

ClientFactory = Callable[[MailchimpSource], MailchimpClient]
# Statuses that mean "send nothing to this address".
OPTED_OUT_STATUSES = ("unsubscribed", "cleaned")


def mailchimp_client_for(config: MailchimpSource) -> MailchimpClient:
    """The source's client, with its key read from the environment now (never stored)."""
    label = f"Mailchimp: {config.name}"
    try:
        api_key = secret_read(config.api_key_env, prefix="MARKETING_")
    except MissingSecret as exc:
        raise SourceBlocked(f"{label}: {exc}") from None
    return source_guarded(
        label,
        lambda: MailchimpClient(
            api_key=api_key, server_prefix=config.server_prefix, http=RetryingHttp(label=label)
        ),
    )


class MailchimpSubscriberSource(SubscriberSource):
    def __init__(
        self, config: MailchimpSource, *, client_factory: ClientFactory = mailchimp_client_for
    ) -> None:
        self.config = config
        self.label = f"Mailchimp: {config.name}"
        self._client_factory = client_factory
        self._client: MailchimpClient | None = None
        self._tag_ids: dict[str, str] | None = None

    @property
    def client(self) -> MailchimpClient:
        if self._client is None:
            self._client = self._client_factory(self.config)
        return self._client

    def _rules(self, event_wix_id: str) -> list[MailchimpRule]:
        # .all() reads the prefetched rules when the builder prefetched them.
        return [r for r in self.config.rules.all() if r.event_wix_id in ("", event_wix_id)]

    def _tag_id(self, name: str) -> str:
        if self._tag_ids is None:
            tags = list(self.client.tags(self.config.list_id))
            self._tag_ids = {str(t.get("name", "")).strip().lower(): str(t.get("id")) for t in tags}
        tag_id = self._tag_ids.get(name.strip().lower())
        if tag_id is None:
            raise SourceClientError(
                f"the audience has no tag named {name!r} (check the rule's spelling)", permanent=True
            )
        return tag_id

    def _members_of(self, rule: MailchimpRule) -> Iterator[dict[str, Any]]:
        list_id = self.config.list_id
        if rule.kind == MailchimpRule.Kind.TAG:
            # A segment lists unsubscribed and cleaned members only when asked; check anyway.
            members = self.client.tag_members(list_id, self._tag_id(rule.tag))
            return (m for m in members if m.get("status") == "subscribed")
        if rule.kind == MailchimpRule.Kind.INTEREST:
            return self.client.members(
                list_id,
                status="subscribed",
                interest_category_id=rule.interest_category_id,
                interest_id=rule.interest_id,
            )
        return self.client.members(list_id, status="subscribed")

    def subscribers_for_event(self, *, event_wix_id: str) -> list[Subscriber]:
        def read() -> list[Subscriber]:
            found: dict[str, Subscriber] = {}
            for rule in self._rules(event_wix_id):
                for member in self._members_of(rule):
                    email = email_normalise(str(member.get("email_address") or ""))
                    if email and email not in found:
                        found[email] = Subscriber(email=email, name=member_name(member))
            return list(found.values())

        return source_guarded(self.label, read)

    def opted_out(self) -> list[str]:
        def read() -> list[str]:
            return [
                email_normalise(str(member.get("email_address") or ""))
                for status in OPTED_OUT_STATUSES
                for member in self.client.members(self.config.list_id, status=status)
                if member.get("email_address")
            ]

        return source_guarded(self.label, read)

    def unsubscribe(self, *, email: str) -> bool:
        """Mark the member unsubscribed in the audience (False: write-back off, or not a member)."""
        if not self.config.write_back_unsubscribes:
            return False
        return source_guarded(
            self.label, lambda: self.client.member_unsubscribe(self.config.list_id, email_normalise(email))
        )


def mailchimp_connection_test(*, config: MailchimpSource) -> ConnectionReport:
    """Read the audience, its tags and interests, and check each rule against them."""
    source = MailchimpSubscriberSource(config)

    def gather() -> list[str]:
        client, list_id = source.client, config.list_id
        audience = client.audience(list_id)
        stats = audience.get("stats") or {}
        lines = [
            f"Audience {audience.get('name')!r}: {stats.get('member_count', '?')} subscribed, "
            f"{stats.get('unsubscribe_count', '?')} unsubscribed, {stats.get('cleaned_count', '?')} cleaned."
        ]
        tags = ", ".join(f"{t.get('name')} ({t.get('member_count', '?')})" for t in client.tags(list_id))
        lines.append(f"Tags: {tags or 'none'}.")
        groups, known = [], set()
        for category in list(client.interest_categories(list_id)):
            cid = str(category.get("id"))
            interests = list(client.interests(list_id, cid))
            known |= {(cid, str(i.get("id"))) for i in interests}
            names = ", ".join(f"{i.get('name')} = {i.get('id')}" for i in interests)
            groups.append(f"{category.get('title')} (category {cid}): {names or 'no interests'}")
        lines.append("Interests: " + ("; ".join(groups) or "none") + ".")
        rules = list(config.rules.all())
        if not rules:
            lines.append("No rules yet: nobody in this audience is opted in for any event.")
        for rule in rules:
            if rule.kind == MailchimpRule.Kind.TAG:
                source._tag_id(rule.tag)  # a tag that does not exist blocks, here as at send time
            elif rule.kind == MailchimpRule.Kind.INTEREST and (
                (rule.interest_category_id, rule.interest_id) not in known
            ):
                raise SourceClientError(
                    f"the audience has no interest {rule.interest_id} in category "
                    f"{rule.interest_category_id} (rule: {rule})",
                    permanent=True,
                )
        return lines

    try:
        return ConnectionReport(ok=True, lines=source_guarded(source.label, gather))
    except SourceError as exc:
        return ConnectionReport(ok=False, lines=[str(exc)])


def mailchimp_sources_for_site(site: WixSite) -> list[SubscriberSource]:
    """The builder registered with ``source_builder_register``: the site's active audiences."""
    configs: Iterable[MailchimpSource] = MailchimpSource.objects.filter(
        site=site, is_active=True
    ).prefetch_related("rules")
    return [MailchimpSubscriberSource(config) for config in configs]
