"""Every EMF line the project emits meets the CloudWatch Embedded Metric Format specification.

The specification (CloudWatch User Guide, "Specification: Embedded metric format") as a
JSON Schema for the document structure, plus the rules a schema cannot state: every metric
and dimension a directive names is a member of the root, dimension values are strings,
metric values are numbers or arrays of at most 100 numbers. Each emitter runs with stdout
captured and each line it prints is checked: the ingest metrics (``IngestMetrics``, as the
Lambda consumer and the KCL consumer use it). The forecast job puts ``ForecastBias`` with
PutMetricData instead (CloudWatch extracts no EMF from a Glue job's output); its test reads
the datum back from the emulator (tests/functional/test_forecast_job.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from pipeline.ingest import IngestMetrics, IngestResult, InMemoryInventory, InMemoryRawStore
from pipeline.local.invoke import import_handler_module
from tests.support.kinesis_events import KinesisPut, kinesis_lambda_event, sequence_number

if TYPE_CHECKING:
    from collections.abc import Callable

UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip
INGEST_HANDLER = Path(__file__).parents[2] / "stream_consumers" / "ingest_stream" / "app.py"
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100

EMF_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                # Milliseconds since the epoch, a whole number.
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {"$ref": "#/definitions/MetricDirective"},
                },
            },
        }
    },
    "definitions": {
        "MetricDirective": {
            "type": "object",
            "required": ["Namespace", "Dimensions", "Metrics"],
            "additionalProperties": False,
            "properties": {
                "Namespace": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": r"\S",
                },
                "Dimensions": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "maxItems": MAX_DIMENSIONS_PER_SET,
                        "items": {"type": "string", "minLength": 1, "maxLength": 250},
                    },
                },
                "Metrics": {
                    "type": "array",
                    "maxItems": MAX_METRICS_PER_DIRECTIVE,
                    "items": {
                        "type": "object",
                        "required": ["Name"],
                        "additionalProperties": False,
                        "properties": {
                            "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Unit": {"enum": UNITS},
                            "StorageResolution": {"enum": [1, 60]},
                        },
                    },
                },
            },
        }
    },
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def emf_violations(line: str) -> list[str]:
    """What breaks the EMF specification in one printed line (empty if nothing)."""
    doc = json.loads(line)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft7Validator(EMF_SCHEMA).iter_errors(doc)
    ]
    if errors:
        return errors
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for dimension in {d for dimension_set in directive["Dimensions"] for d in dimension_set}:
            if dimension not in doc:
                errors.append(f"dimension {dimension}: no member in the root")
            elif not isinstance(doc[dimension], str):
                errors.append(f"dimension {dimension}: value is not a string")
        for metric in directive["Metrics"]:
            name = metric["Name"]
            value = doc.get(name)
            if name not in doc:
                errors.append(f"metric {name}: no member in the root")
            elif isinstance(value, list):
                if len(value) > MAX_VALUES_PER_METRIC:
                    errors.append(f"metric {name}: {len(value)} values > {MAX_VALUES_PER_METRIC}")
                if not all(_is_number(v) for v in value):
                    errors.append(f"metric {name}: a value is not a number")
            elif not _is_number(value):
                errors.append(f"metric {name}: value is not a number")
    return errors


def emitted(
    capsys: pytest.CaptureFixture[str], emit: Callable[[], None], *, logs: bool = False
) -> list[dict[str, Any]]:
    """Run ``emit``; check every stdout line against the spec; return the EMF documents.

    With ``logs``, stdout may also hold Powertools Logger records (JSON without ``_aws``).
    """
    capsys.readouterr()
    emit()
    lines = capsys.readouterr().out.splitlines()
    if logs:
        records = [json.loads(line) for line in lines if "_aws" not in json.loads(line)]
        assert all({"level", "message"} <= set(record) for record in records), records
        lines = [line for line in lines if "_aws" in json.loads(line)]
    assert {line: emf_violations(line) for line in lines} == {line: [] for line in lines}
    return [json.loads(line) for line in lines]


def metric_values(docs: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """All values per (namespace, metric name), in emission order."""
    out: dict[tuple[str, str], list[float]] = {}
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = doc[metric["Name"]]
                out.setdefault((directive["Namespace"], metric["Name"]), []).extend(
                    value if isinstance(value, list) else [value]
                )
    return out


# --- the checker itself catches each broken rule ------------------------------------------

GOOD_LINE: dict[str, Any] = {
    "_aws": {
        "Timestamp": 1_764_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "FMCG/System",
                "Dimensions": [["service"]],
                "Metrics": [{"Name": "IngestedEvents", "Unit": "Count"}],
            }
        ],
    },
    "service": "ingest",
    "IngestedEvents": [3.0],
}


def _broken(change: Callable[[dict[str, Any]], None]) -> str:
    doc = json.loads(json.dumps(GOOD_LINE))
    change(doc)
    return json.dumps(doc)


def _directive(doc: dict[str, Any]) -> dict[str, Any]:
    directive: dict[str, Any] = doc["_aws"]["CloudWatchMetrics"][0]
    return directive


@pytest.mark.parametrize(
    ("change", "violation"),
    [
        (lambda d: d.pop("_aws"), "<root>: '_aws' is a required property"),
        (
            lambda d: d["_aws"].update(Timestamp=1.5),
            "_aws/Timestamp: 1.5 is not of type 'integer'",
        ),
        (
            lambda d: d["_aws"].pop("CloudWatchMetrics"),
            "_aws: 'CloudWatchMetrics' is a required property",
        ),
        (
            lambda d: _directive(d).update(Namespace=" "),
            "_aws/CloudWatchMetrics/0/Namespace: ' ' does not match '\\\\S'",
        ),
        (
            lambda d: _directive(d).update(Dimensions=[[f"d{i}" for i in range(31)]]),
            "_aws/CloudWatchMetrics/0/Dimensions/0: "
            + repr([f"d{i}" for i in range(31)])
            + " is too long",
        ),
        (
            lambda d: _directive(d)["Metrics"].extend({"Name": f"m{i}"} for i in range(100)),
            "_aws/CloudWatchMetrics/0/Metrics: "
            + repr(
                [{"Name": "IngestedEvents", "Unit": "Count"}]
                + [{"Name": f"m{i}"} for i in range(100)]
            )
            + " is too long",
        ),
        (
            lambda d: _directive(d)["Metrics"][0].update(Unit="Events"),
            "_aws/CloudWatchMetrics/0/Metrics/0/Unit: 'Events' is not one of " + repr(UNITS),
        ),
        (lambda d: d.pop("service"), "dimension service: no member in the root"),
        (lambda d: d.update(service=7), "dimension service: value is not a string"),
        (lambda d: d.pop("IngestedEvents"), "metric IngestedEvents: no member in the root"),
        (
            lambda d: d.update(IngestedEvents=[1.0] * 101),
            "metric IngestedEvents: 101 values > 100",
        ),
        (
            lambda d: d.update(IngestedEvents="3"),
            "metric IngestedEvents: value is not a number",
        ),
        (
            lambda d: d.update(IngestedEvents=[1.0, True]),
            "metric IngestedEvents: a value is not a number",
        ),
    ],
)
def test_given_a_line_breaking_one_rule_when_checked_then_that_violation_is_reported(
    change: Callable[[dict[str, Any]], None], violation: str
) -> None:
    assert emf_violations(_broken(change)) == [violation]


def test_given_a_line_meeting_the_spec_when_checked_then_no_violation() -> None:
    assert emf_violations(json.dumps(GOOD_LINE)) == []


# --- the emitters -------------------------------------------------------------------------


def test_given_a_kinesis_batch_when_the_lambda_consumer_runs_then_its_emf_lines_meet_the_spec(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAW_BUCKET", "raw")
    app = import_handler_module(INGEST_HANDLER, "ingest_app_emf_spec")
    app._adapters = lambda: (InMemoryRawStore(), InMemoryInventory())
    good = {
        "event_id": "evt-1",
        "event_type": "stock_count",
        "sku_id": "SKU-1",
        "location_id": "STORE-1",
        "quantity": 0,
        "stock_on_hand": 0,
        "event_time": "2025-03-01T09:00:00+00:00",
    }
    puts = [
        KinesisPut(json.dumps({**good, "event_id": f"evt-{i}"}).encode(), "SKU-1#STORE-1",
                   sequence_number(i), 1740820630.0 + i)
        for i in range(150)
    ]  # fmt: skip
    puts.append(KinesisPut(b"{", "SKU-1#STORE-1", sequence_number(150), 1740820790.0))
    event = kinesis_lambda_event(puts)

    docs = emitted(capsys, lambda: app.lambda_handler(event, None), logs=True)
    values = metric_values(docs)
    assert len(values["FMCG/System", "StreamLagMilliseconds"]) == 150
    assert values["FMCG/System", "IngestedEvents"] == [150.0]
    assert values["FMCG/System", "QuarantinedRecords"] == [1.0]
    assert values["FMCG/Business", "StockoutCount"] == [1.0]


def _result(lag_count: int, *, stockouts: int | None, quarantined: int) -> IngestResult:
    return IngestResult(
        records=lag_count + quarantined,
        events=lag_count + quarantined,
        valid=lag_count,
        quarantined={"invalid_json": quarantined} if quarantined else {},
        lag_ms=tuple(float(i) for i in range(lag_count)),
        stockout_count=stockouts,
    )


@pytest.mark.parametrize("service", [None, "kcl-consumer"])
@pytest.mark.parametrize(
    ("lag_count", "stockouts", "quarantined"),
    [(0, None, 0), (1, 0, 2), (100, 5, 0), (101, None, 1), (250, 3, 7)],
)
def test_given_an_ingested_batch_when_ingest_metrics_flush_then_every_line_meets_the_spec(
    capsys: pytest.CaptureFixture[str],
    service: str | None,
    lag_count: int,
    stockouts: int | None,
    quarantined: int,
) -> None:
    def emit() -> None:
        metrics = IngestMetrics(service=service)
        metrics.record(_result(lag_count, stockouts=stockouts, quarantined=quarantined))
        metrics.flush()

    values = metric_values(emitted(capsys, emit))
    expected = {
        ("FMCG/System", "IngestedEvents"): [float(lag_count)],
        ("FMCG/System", "QuarantinedRecords"): [float(quarantined)],
    }
    if lag_count:
        expected["FMCG/System", "StreamLagMilliseconds"] = [float(i) for i in range(lag_count)]
    if stockouts is not None:
        expected["FMCG/Business", "StockoutCount"] = [float(stockouts)]
    assert values == expected


def test_given_a_failed_batch_when_ingest_metrics_flush_then_the_line_meets_the_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def emit() -> None:
        metrics = IngestMetrics(service="ingest")
        metrics.record_failed_batch()
        metrics.flush()

    docs = emitted(capsys, emit)
    assert metric_values(docs) == {("FMCG/System", "IngestFailedBatches"): [1.0]}
    assert [doc["service"] for doc in docs] == ["ingest"]
