"""The plain-Python fast path knows every rule the published schema states.

``accept_plain`` reads bounds, patterns and the enum from the schema, but the kinds of
rules it checks are code: a new keyword in the schema (an ``exclusiveMaximum``, another
``if``) would not reach it. This test fails first, pointing at the fast path to extend.
"""

from __future__ import annotations

from pipeline.contracts import load_schema

KNOWN_TOP_LEVEL = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "if",
    "then",
    "additionalProperties",
}
KNOWN_PROPERTY_RULES = {"description", "type", "pattern", "minimum", "maximum", "enum", "format"}


def test_given_the_published_schema_then_it_uses_only_rules_the_fast_path_implements() -> None:
    schema = load_schema()
    assert set(schema) <= KNOWN_TOP_LEVEL
    assert schema["required"] == [
        "event_id",
        "event_type",
        "sku_id",
        "location_id",
        "quantity",
        "event_time",
    ]
    assert schema["if"] == {"properties": {"event_type": {"const": "stock_count"}}}
    assert schema["then"] == {"required": ["stock_on_hand"]}
    assert schema["additionalProperties"] is True
    rules = {name: set(spec) for name, spec in schema["properties"].items()}
    assert all(r <= KNOWN_PROPERTY_RULES for r in rules.values()), rules
    types = {name: spec.get("type") for name, spec in schema["properties"].items()}
    assert types == {
        "event_id": "string",
        "event_type": None,
        "sku_id": "string",
        "location_id": "string",
        "quantity": "integer",
        "stock_on_hand": "integer",
        "unit_price": "number",
        "event_time": "string",
    }
    assert schema["properties"]["event_time"]["format"] == "date-time"
