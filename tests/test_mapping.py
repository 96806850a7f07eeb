from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from sync.domain.mapping import MappingError, MappingSpec, mapping_apply, mapping_validate, payload_hash
from sync.models import EntityType
from tests.conftest import wix_payload

TD = EntityType.TICKET_DEFINITION
FIXED = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
OPTIONS = wix_payload("ticket_definitions__query_pricing_options")["ticketDefinitions"][0]


def spec(
    source: str, target: str, transform: str = "text", argument: str = "", required: bool = False
) -> MappingSpec:
    return MappingSpec(source, target, transform, argument, required)


def test_every_transform_builds_the_payload() -> None:
    payload = mapping_apply(
        [
            spec("name", "title"),
            spec("initialLimit", "quota.size", "integer"),
            spec("revision", "meta.revision", "integer"),
            spec("pricingMethod.fixedPrice.value", "price", "decimal"),
            spec("salePeriod.startDate", "sales.start", "datetime"),
            spec("hidden", "active", "enum_map", '{"true": false, "false": true}'),
            spec("limited", "limited", "boolean"),
            spec("", "label", "template", "{name} ({pricingMethod.fixedPrice.currency})"),
            spec("", "source", "constant", '{"system": "wix"}'),
            spec("description", "nested.deep.description"),
        ],
        FIXED,
    )
    assert payload == {
        "title": "General Admission",
        "quota": {"size": 200},
        "meta": {"revision": 4},
        "price": "25.00",
        "sales": {"start": "2026-03-10T08:00:00Z"},
        "active": True,
        "limited": True,
        "label": "General Admission (EUR)",
        "source": {"system": "wix"},
        "nested": {"deep": {"description": "Standing area, doors at 19:00."}},
    }


def test_every_pricing_option_maps_to_one_object_and_an_index_picks_one() -> None:
    options = "pricingMethod.pricingOptions.optionDetails"
    payload = mapping_apply(
        [
            spec(f"{options}[*].name", "variations[*].name"),
            spec(f"{options}[*].price.value", "variations[*].price", "decimal"),
            spec(f"{options}[0].price.value", "default_price", "decimal"),
            spec(f"{options}[*].optionId", "option_ids"),
        ],
        OPTIONS,
    )
    assert payload == {
        "variations": [{"name": "Adult", "price": "40.00"}, {"name": "Child", "price": "20.00"}],
        "default_price": "40.00",
        "option_ids": ["11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"],
    }


def test_missing_optional_fields_are_omitted_and_required_ones_fail() -> None:
    assert mapping_apply([spec("pricingMethod.fixedPrice.value", "price", "decimal")], OPTIONS) == {}
    with pytest.raises(MappingError, match=r"pricingMethod\.fixedPrice\.value is required by price"):
        mapping_apply([spec("pricingMethod.fixedPrice.value", "price", "decimal", required=True)], OPTIONS)


def test_bad_values_raise_a_mapping_error_naming_the_field() -> None:
    with pytest.raises(MappingError, match="saleStatus: 'SALE_STARTED' is not in the enum map"):
        mapping_apply([spec("saleStatus", "state", "enum_map", '{"SALE_ENDED": "closed"}')], FIXED)
    broken = {**FIXED, "pricingMethod": {"fixedPrice": {"value": "twenty", "currency": "EUR"}}}
    with pytest.raises(MappingError, match="'twenty' is not a decimal string"):
        mapping_apply([spec("pricingMethod.fixedPrice.value", "price", "decimal")], broken)


def test_the_payload_hash_ignores_key_order() -> None:
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


@pytest.mark.parametrize(
    ("entity_type", "mapping", "field", "message"),
    [
        (TD, spec("pricingMethod.fixedPrize.value", "price", "decimal"), "source_path", "Wix has no field"),
        (EntityType.POLICY, spec("initialLimit", "size", "integer"), "source_path", "Wix has no field"),
        (TD, spec("name", "price", "decimal"), "transform", "cannot apply to name (a str value)"),
        (TD, spec("salePeriod.startDate", "x", "boolean"), "transform", "cannot apply"),
        (TD, spec("saleStatus", "x", "enum_map", "not json"), "argument", "valid JSON"),
        (TD, spec("saleStatus", "x", "enum_map", "[1]"), "argument", "non-empty JSON object"),
        (TD, spec("", "x", "template", "{nmae}"), "argument", "Unknown Wix field(s)"),
        (TD, spec("name", "x", "constant", '"c"'), "source_path", "takes no source path"),
        (TD, spec("", "x", "text"), "source_path", "Required"),
        (TD, spec("name", "items[*].name"), "target_field", "needs a [*] source"),
        (TD, spec("name", "a..b"), "target_field", "Not a dotted path"),
    ],
)
def test_validation_refuses_mappings_that_cannot_work(
    entity_type: str, mapping: MappingSpec, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        mapping_validate(entity_type=entity_type, spec=mapping)
    assert message in " ".join(info.value.message_dict[field])


@pytest.mark.parametrize(
    "mapping",
    [
        spec("pricingMethod.pricingOptions.optionDetails[1].price.value", "price", "decimal"),
        spec("pricingMethod.pricingOptions.optionDetails[*].price.value", "variations[*].price", "decimal"),
        spec("revision", "rev", "integer"),
        spec("hidden", "active", "enum_map", '{"true": false, "false": true}'),
        spec("", "label", "template", "{name}"),
    ],
)
def test_validation_accepts_good_mappings(mapping: MappingSpec) -> None:
    mapping_validate(entity_type=TD, spec=mapping)


WIX_POLICY_HTML = (
    "<p>Refunds up to 7&nbsp;days before the event. Caf&eacute; &amp; bar excluded; "
    "&lt;b&gt; is not bold.</p>"
    "<ul><li><p>Full refund</p></li><li>50% <u>afterwards</u><br>by email</li></ul><ol><li>one</li></ol>"
    '<p>Read <a href="https://example.com/terms?a=1&amp;b=2" target="_blank">our terms</a>.'
    '<img src="https://example.com/x.png" alt="x"></p>'
)


def test_html_to_markdown_keeps_paragraphs_lists_links_and_text_pretix_would_misread() -> None:
    spec = MappingSpec("body", "text.en", "html_to_markdown")
    text = mapping_apply([spec], {"body": WIX_POLICY_HTML})["text"]["en"]
    assert text == (
        "Refunds up to 7\xa0days before the event. Café &amp; bar excluded; &lt;b&gt; is not bold.\n\n"
        "- Full refund\n- 50% afterwards  \n  by email\n\n1. one\n\n"
        "Read [our terms](https://example.com/terms?a=1&b=2)."
    )
    assert mapping_apply([spec], {}) == {}  # no body, not required: no text
    with pytest.raises(MappingError, match="is not HTML text"):
        mapping_apply([spec], {"body": 3})


def test_html_to_markdown_with_a_template_escapes_the_other_fields() -> None:
    spec = MappingSpec("body", "text.en", "html_to_markdown", "<p><strong>{name}</strong></p>{body}")
    policy = {"name": "Terms <& conditions>", "body": "<p>Be *kind*.</p>"}
    assert mapping_apply([spec], policy)["text"]["en"] == (
        "**Terms &lt;&amp; conditions&gt;**\n\nBe \\*kind\\*."
    )
    assert mapping_apply([spec], {"name": "Only a name"})["text"]["en"] == "**Only a name**"
    mapping_validate(entity_type=EntityType.POLICY, spec=spec)
    with pytest.raises(ValidationError) as refused:
        mapping_validate(
            entity_type=EntityType.POLICY,
            spec=MappingSpec("body", "text.en", "html_to_markdown", "{nmae} {body}"),
        )
    assert "nmae" in str(refused.value)
    with pytest.raises(ValidationError):
        mapping_validate(
            entity_type=EntityType.TICKET_DEFINITION, spec=MappingSpec("hidden", "x", "html_to_markdown")
        )
