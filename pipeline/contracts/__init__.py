"""The sales event contract v1: the published JSON Schema and its one typed model."""

from pipeline.contracts.sales_event import (
    EVENT_TYPES,
    MAX_RECORD_BYTES,
    SCHEMA_PATH,
    SalesEvent,
    load_schema,
    parse_event,
    parse_plain,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_RECORD_BYTES",
    "SCHEMA_PATH",
    "SalesEvent",
    "load_schema",
    "parse_event",
    "parse_plain",
    "validate_event",
]
