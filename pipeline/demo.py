"""``fmcg demo``: the whole pipeline, every stage real, on the embedded emulator.

Provision from the template, produce weeks of synthetic history plus live events (and a
few poison records), consume them through the local event source mapping into the raw
zone, compact into the curated zone, forecast into DynamoDB (after backfilling the forecast
of two weeks ago, so ForecastBias has something to measure), read one forecast through the
local API gateway with a Cognito token, and query the curated zone with SQL.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.event_source import LocalPoller
    from pipeline.local.stack import LocalStack
    from pipeline.produce import Producer, ProduceReport

Step = Callable[[str], None]

#: The demo backfills the forecast made this many days ago, so the final run's
#: ForecastBias compares real forecasts with the actuals that have arrived since.
BIAS_DAYS = 14

POISON_RECORDS: tuple[bytes, ...] = (
    b"not json at all",
    b'{"event_id": "bad-1", "event_type": "sale"}',
    b'{"event_id": "bad-2", "event_type": "sale", "sku_id": "SKU#1", "location_id": "L1",'
    b' "quantity": 1, "event_time": "2026-01-01T00:00:00+00:00"}',
    b"\xff\xfe\x00garbage",
)


@dataclass
class DemoReport:
    """What the demo prints at the end."""

    events_produced: int = 0
    kinesis_records: int = 0
    poison_produced: int = 0
    events_landed: int = 0
    quarantined: int = 0
    lag_p50_ms: float = float("nan")
    lag_p99_ms: float = float("nan")
    curated_rows: int = 0
    curated_partitions: int = 0
    forecast_items: int = 0
    forecast_bias_pct: float | None = None
    api_status: int = 0
    api_response: dict[str, Any] = field(default_factory=dict)
    query_rows: list[dict[str, Any]] = field(default_factory=list)
    chart: Path | None = None
    seconds: float = 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_demo(
    stack: LocalStack,
    *,
    out_dir: Path,
    weeks: int = 8,
    n_skus: int = 12,
    n_locations: int = 4,
    live_events: int = 2000,
    live_rate: int = 500,
    seed: int = 7,
    step: Step = lambda _msg: None,
) -> DemoReport:
    """Run every stage once against ``stack`` and return the figures for the report."""
    from pipeline.local.event_source import LocalPoller
    from pipeline.local.glue_runtime import run_glue_job
    from pipeline.local.invoke import load_handler
    from pipeline.produce import Producer
    from pipeline.query import run_query
    from pipeline.synth import SynthConfig, generate_events
    from pipeline.synth import live_events as make_live

    started = time.monotonic()
    report = DemoReport()
    session = stack.session()
    today = datetime.now(UTC).date()

    step(f"generating {weeks} weeks of history for {n_skus} SKUs x {n_locations} locations")
    config = SynthConfig(
        seed=seed,
        n_skus=n_skus,
        n_locations=n_locations,
        start=today - timedelta(days=7 * weeks),
        days=7 * weeks,
        duplicate_rate=0.01,
        late_rate=0.01,
    )
    history = generate_events(config)
    live = make_live(config, datetime.now(UTC), live_events)

    kinesis = session.client("kinesis")
    producer = Producer(kinesis, stack.ref("SalesStream"), aggregate=True)
    poller = LocalPoller(stack, "IngestStreamFunction", load_handler(stack, "IngestStreamFunction"))

    step(f"producing {len(history):,} history events to {stack.ref('SalesStream')}")
    produced = producer.put(history)
    report.events_produced += produced.events
    report.kinesis_records += produced.kinesis_records
    for i, blob in enumerate(POISON_RECORDS):
        kinesis.put_record(StreamName=stack.ref("SalesStream"), Data=blob, PartitionKey=f"p{i}")
    report.poison_produced = len(POISON_RECORDS)

    step("consuming through the local event source mapping into the raw zone")
    poller.drain()

    step(f"producing {len(live):,} live events at {live_rate}/s while the mapping polls")
    backlog = len(poller.stats.lags_ms)
    produced = _produce_live(producer, poller, live, live_rate)
    report.events_produced += produced.events
    report.kinesis_records += produced.kinesis_records
    live_lags = poller.drain().lags_ms[backlog:]
    report.lag_p50_ms = _percentile(live_lags, 50)
    report.lag_p99_ms = _percentile(live_lags, 99)

    report.events_landed, report.quarantined = _count_raw(session, stack.ref("RawBucket"))

    step("compacting the raw zone into the curated zone (Glue job, from its artifacts)")
    # The synthetic history arrives all at once, up to `weeks` old: a retailer's history is
    # a deliberate load, not late traffic, so this run allows its age (a scheduled run holds
    # events older than LatenessHorizonDays aside: pipeline/compaction/lateness.py).
    history_days = str(7 * weeks + 2)
    compaction = run_glue_job(
        stack, "CompactSalesJob", arguments={"--lateness_horizon_days": history_days}
    )
    report.curated_rows = int(compaction["rows_written"])
    report.curated_partitions = int(compaction["partitions_written"])

    step(f"backfilling the forecast of {BIAS_DAYS} days ago, so ForecastBias has actuals")
    backfill = (today - timedelta(days=BIAS_DAYS)).isoformat()
    run_glue_job(stack, "ForecastDemandJob", arguments={"--as_of": backfill})

    step("forecasting every SKU x location into DynamoDB (Glue job, from its artifacts)")
    forecast = run_glue_job(stack, "ForecastDemandJob")
    report.forecast_items = int(forecast["items_written"])
    report.forecast_bias_pct = forecast["forecast_bias_pct"]

    sku, location = history[0]["sku_id"], history[0]["location_id"]
    step("reading one forecast through the API with a ViewerGroup token")
    report.api_status, report.api_response = _call_api(stack, sku, location, today)

    step("querying the curated zone with SQL")
    frame = run_query(
        "SELECT event_type, count(*) AS events, sum(quantity) AS units "
        "FROM sales GROUP BY event_type ORDER BY event_type",
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        session=session,
    )
    records = frame.to_dict(orient="records")
    report.query_rows = [{str(k): v for k, v in row.items()} for row in records]

    step("drawing one forecast")
    report.chart = _chart(stack, sku, location, out_dir)
    report.seconds = time.monotonic() - started
    return report


def _produce_live(
    producer: Producer, poller: LocalPoller, events: list[dict[str, Any]], rate: int
) -> ProduceReport:
    """Put ``events`` at ``rate`` per second in 100 ms ticks while the poller runs.

    Lag is only meaningful for a consumer that is keeping up with live traffic, so the
    mapping polls in a thread during production, as Lambda's does.
    """
    stop = threading.Event()
    consumer = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    consumer.start()
    per_tick = max(1, rate // 10)
    total: ProduceReport | None = None
    started = time.monotonic()
    try:
        for tick, first in enumerate(range(0, len(events), per_tick)):
            report = producer.put(events[first : first + per_tick])
            total = report if total is None else total.merge(report)
            time.sleep(max(0.0, started + (tick + 1) * 0.1 - time.monotonic()))
    finally:
        stop.set()
        consumer.join(timeout=60)
    assert total is not None
    return total


def _count_raw(session: Any, bucket: str) -> tuple[int, int]:
    """Events in the raw zone and records in the quarantine (one NDJSON line each)."""
    s3 = session.client("s3")
    counts = {"sales/": 0, "quarantine/": 0}
    for prefix in counts:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                counts[prefix] += sum(1 for line in body.splitlines() if line.strip())
    return counts["sales/"], counts["quarantine/"]


def _call_api(
    stack: LocalStack, sku: str, location: str, today: date
) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    from pipeline.local.gateway import LocalGateway
    from pipeline.local.invoke import load_handler
    from pipeline.local.users import create_user, id_token

    create_user(stack, "demo-viewer", groups=["ViewerGroup"])
    token = id_token(stack, "demo-viewer")
    handler = load_handler(stack, "GetForecastFunction")
    query = f"sku_id={sku}&location_id={location}&from={today}&to={today + timedelta(days=6)}"
    with LocalGateway(stack, handler) as gateway:
        request = urllib.request.Request(
            f"{gateway.url}/forecasts?{query}", headers={"Authorization": token}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def _chart(stack: LocalStack, sku: str, location: str, out_dir: Path) -> Path:
    from pipeline.local.forecast_chart import plot_from_stack

    out_dir.mkdir(parents=True, exist_ok=True)
    return plot_from_stack(stack, sku, location, out_dir / f"forecast-{sku}-{location}.png")
