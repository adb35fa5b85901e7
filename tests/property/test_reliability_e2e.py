"""Property: under any generated fault schedule the pipeline loses nothing and duplicates
nothing.

Generated event streams (duplicates, late and out-of-order events, bad records) x generated
fault schedules (5xx, throttling, timeouts, lost responses, partial PutRecords and
BatchWriteItem failures, process kills between a write and its checkpoint or commit) go
through the real stages: producer -> Kinesis -> local event source mapping with the real
ingest handler -> compaction -> (on some examples) the forecaster. A stage that crashes is
re-run as an operator or a scheduler would; a killed poller restarts from its checkpoint
file. Then: curated = the de-duplicated valid events; every bad record is in quarantine with
a reason; StockoutCount equals the ground truth; forecasts are complete.

``FMCG_RELIABILITY_EXAMPLES`` raises the number of schedules (the soak: 1000);
``FMCG_RELIABILITY_REPORT`` names a JSON-lines file that gets one line per example.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import types
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.endpoint
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.compaction import run_compaction
from pipeline.compaction.lateness import Lateness
from pipeline.errors import TerminalError, TransientError
from pipeline.faults import FaultPlan, FaultRule, ProcessKilled
from pipeline.forecasting.job import run_forecast
from pipeline.ingest import DynamoInventory
from pipeline.ingest.decode import user_records
from pipeline.local.event_source import LocalPoller
from pipeline.produce import Producer
from tests.support.compaction_lake import table_rows
from tests.support.crash import CRASH_STEPS, Crash, Crasher
from tests.support.reliability_world import World

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack
    from tests.support.reliability_world import Resources

pytestmark = pytest.mark.slow

#: Fault schedules over the stream path (producer, Kinesis, event source mapping, ingest
#: handler, inventory): cheap, so the most schedules run here.
EXAMPLES = int(os.environ.get("FMCG_RELIABILITY_EXAMPLES", "90"))
#: Fault schedules over the whole pipeline (adds compaction and the forecaster: ~2 s each).
E2E_EXAMPLES = int(os.environ.get("FMCG_RELIABILITY_E2E_EXAMPLES", "12"))
REPORT = os.environ.get("FMCG_RELIABILITY_REPORT")
#: Every this many examples also run the forecaster (it costs ~1 s).
FORECAST_EVERY = 4
HORIZON = 3
#: Re-runs an operator would do before paging someone; the limits below stay under it.
MAX_RERUNS = 12
#: A fixed instant: the examples' data follows from the source alone (the stream's arrival
#: times are the emulator's clock, so compaction is told below how late these events may be).
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
#: The events are dated around NOW and arrive at the wall clock's time: all of them merge.
LATENESS = Lateness(horizon_days=36_500)
SKUS, LOCATIONS = ("A", "B"), ("L1", "L2")

_WORLDS: dict[str, World] = {}
_SEEN = [0]

BAD_RECORDS: tuple[dict[str, Any], ...] = (
    {"event_type": "sale", "sku_id": "A", "location_id": "L1", "quantity": 1},  # no time
    {"event_type": "sale", "sku_id": "A#1", "location_id": "L1", "quantity": 1},  # '#'
    {"event_type": "refund", "sku_id": "A", "location_id": "L2", "quantity": 1},  # type
    {"event_type": "sale", "sku_id": "B", "location_id": "L1", "quantity": 1.5},  # float
    {"event_type": "sale", "sku_id": "B", "location_id": "L2", "quantity": 1,
     "event_time": "2026-01-01T00:00:00"},  # no offset
)  # fmt: skip

#: What each stage's clients may suffer: (operation, kinds). Limits keep every fault
#: finite, below the retry budgets (event source mapping: 5 retries; producer: 8 attempts).
PRODUCER_FAULTS = [
    ("kinesis.PutRecords", ["partial", "throttle", "server_error", "response_lost"]),
]
HANDLER_FAULTS = [
    ("s3.PutObject", ["server_error", "throttle", "read_timeout", "response_lost", "kill"]),
    ("dynamodb.TransactWriteItems", ["throttle", "server_error", "response_lost", "kill"]),
    ("dynamodb.BatchGetItem", ["throttle", "connect_timeout", "kill"]),
    ("dynamodb.GetItem", ["server_error", "kill"]),
]
BATCH_FAULTS = [
    ("s3.PutObject", ["server_error", "read_timeout", "response_lost", "kill"]),
    ("s3.GetObject", ["server_error", "connect_timeout"]),
    ("s3.ListObjectsV2", ["throttle"]),
    ("glue.BatchCreatePartition", ["server_error"]),
    ("dynamodb.BatchWriteItem", ["partial", "throttle", "response_lost", "kill"]),
]


def _rules(
    draw: st.DrawFn, menu: list[tuple[str, list[str]]], *, certain: FaultRule | None = None
) -> tuple[FaultRule, ...]:
    # ``certain`` strikes the first call of an operation every example makes, so each
    # example injects at least one fault (asserted below).
    rules = [] if certain is None else [certain]
    for operation, kinds in menu:
        for kind in draw(st.lists(st.sampled_from(kinds), max_size=2, unique=True)):
            calls = draw(st.frozensets(st.integers(1, 6), min_size=1, max_size=2))
            rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
            rules.append(
                FaultRule(operation, kind, rate=rate, calls=calls, limit=2)  # type: ignore[arg-type]
            )
    return tuple(rules)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 12))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["sale", "sale", "return", "stock_count"]))
        stock = (
            draw(st.integers(0, 3))
            if kind == "stock_count"
            else draw(st.none() | st.integers(0, 3))
        )
        # Up to three days old: late events land in their own day's partition.
        moment = NOW - timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
        events.append(
            {
                "event_id": f"ev-{i}",
                "event_type": kind,
                "sku_id": draw(st.sampled_from(SKUS)),
                "location_id": draw(st.sampled_from(LOCATIONS)),
                "quantity": 0 if kind == "stock_count" else draw(st.integers(1, 5)),
                "event_time": moment.isoformat(),
                **({} if stock is None else {"stock_on_hand": stock}),
            }
        )
    bad = [
        {"event_id": f"bad-{i}", **BAD_RECORDS[j]}
        for i, j in enumerate(draw(st.lists(st.integers(0, len(BAD_RECORDS) - 1), max_size=3)))
    ]
    stream = events + draw(st.lists(st.sampled_from(events), max_size=4)) + bad
    order = draw(st.permutations(range(len(stream))))
    seed = draw(st.integers(0, 2**16))
    return {
        "events": events,
        "bad": bad,
        "stream": [stream[i] for i in order],
        "shards": draw(st.integers(1, 2)),
        "aggregate": draw(st.booleans()),
        "batch_size": draw(st.integers(2, 12)),
        "producer": FaultPlan(
            _rules(
                draw,
                PRODUCER_FAULTS,
                certain=FaultRule(
                    "kinesis.PutRecords",
                    # Not "partial": a call of one record has no item it may fail.
                    draw(st.sampled_from(["throttle", "server_error", "response_lost"])),
                    calls=frozenset({1}),
                    limit=1,
                ),
            ),
            seed,
        ),
        "handler": FaultPlan(_rules(draw, HANDLER_FAULTS), seed + 1),
        "batch": FaultPlan(_rules(draw, BATCH_FAULTS), seed + 2),
        "compaction_crash_step": draw(st.sampled_from(CRASH_STEPS)),
        "compaction_crash_position": draw(st.floats(0, 1)),
    }


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry sleeps at a hundredth (throttling backs off by up to seconds)."""
    shim = types.SimpleNamespace(sleep=lambda s: time.sleep(s / 100), time=time.time)
    monkeypatch.setattr(botocore.endpoint, "time", shim)


def _world(stack: LocalStack) -> World:
    if stack.stack_name not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[stack.stack_name] = World(stack)
    return _WORLDS[stack.stack_name]


def _ingest(world: World, res: Resources, batch_size: int, checkpoint: Path) -> int:
    """Drain the stream like Lambda; a killed poller restarts from its checkpoint file."""
    restarts = 0
    while True:
        poller = LocalPoller(
            world.stack,
            "IngestStreamFunction",
            world.handler,
            kinesis_client=world.poll_kinesis,
            mapping=world.mapping_for(res, batch_size),
            checkpoint_path=checkpoint,
        )
        try:
            stats = poller.drain(timeout_s=60)
        except ProcessKilled:
            restarts += 1
            assert restarts <= MAX_RERUNS
            continue
        assert stats.caught_up
        assert stats.records_retries_exhausted == 0
        assert stats.records_expired == 0
        return restarts


def _rerun(job: Any, world: World, **kwargs: Any) -> int:
    """Run a batch job until it succeeds; a crash or a transient failure means run again.

    A terminal error is not retried: the fault that caused it was classified as one that
    retrying cannot fix, and the test fails naming it.
    """
    for crashes in range(MAX_RERUNS):
        try:
            job(**kwargs)
        except (ProcessKilled, Crash, TransientError):
            # The crash hook stays on: it strikes once, and a transient failure before its
            # step must not take away the crash the example drew.
            continue
        except TerminalError as e:
            raise AssertionError(
                f"{job.__name__} failed terminally ({e!r}) under faults {_injected(world)}"
            ) from e
        return crashes
    raise AssertionError(f"{job.__name__} still failing after {MAX_RERUNS} runs")


def _injected(world: World) -> Counter[str]:
    injected = Counter[str]()
    for injector in (world.producer_faults, world.handler_faults, world.batch_faults):
        injected.update(injector.injected)
    return injected


def _objects(world: World, bucket: str, prefix: str) -> list[bytes]:
    listing = world.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [world.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing]


def _expected_stockouts(events: list[dict[str, Any]]) -> int:
    latest: dict[tuple[str, str], tuple[datetime, str, int]] = {}
    for e in events:
        if "stock_on_hand" not in e:
            continue
        version = (datetime.fromisoformat(e["event_time"]), e["event_id"], e["stock_on_hand"])
        pair = (e["sku_id"], e["location_id"])
        if pair not in latest or version[:2] > latest[pair][:2]:
            latest[pair] = version
    return sum(1 for v in latest.values() if v[2] == 0)


def _stream_path(world: World, res: Resources, scenario: dict[str, Any], tmp: Path) -> int:
    """Produce under faults, then drain with the real handler; return poller restarts."""
    world.producer_faults.reset(scenario["producer"])
    world.handler_faults.reset(scenario["handler"])
    world.batch_faults.reset(scenario["batch"])
    producer = Producer(
        world.kinesis,
        res.stream,
        aggregate=scenario["aggregate"],
        rng=random.Random(0),
        sleep=lambda _s: None,
    )
    producer.put(scenario["stream"])
    return _ingest(world, res, scenario["batch_size"], tmp / f"{res.stream}.json")


def _quarantined(world: World, res: Resources) -> dict[str, str]:
    """The event id of every record in quarantine and its reason (a whole aggregate's
    entry holds its user records)."""
    out: dict[str, str] = {}
    for body in _objects(world, res.lake.raw, "quarantine/"):
        for line in body.splitlines():
            entry = json.loads(line)
            assert entry["reason"]
            data = base64.b64decode(entry["data_b64"])
            records = (
                [r for _, r in user_records(data, max_user_records=None)]
                if "user_records" in entry
                else [data]
            )
            for record in records:
                out[json.loads(record)["event_id"]] = entry["reason"]
    return out


def _whole_aggregates(world: World, res: Resources) -> list[list[str]]:
    """The event ids of each KPL aggregate quarantined whole."""
    out = []
    for body in _objects(world, res.lake.raw, "quarantine/"):
        for line in body.splitlines():
            entry = json.loads(line)
            if "user_records" in entry:
                data = base64.b64decode(entry["data_b64"])
                records = user_records(data, max_user_records=None)
                out.append([json.loads(r)["event_id"] for _, r in records])
    return out


def _delivered(world: World, res: Resources, scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """The valid events, less those inside an aggregate the input made mostly invalid."""
    bad = {b["event_id"] for b in scenario["bad"]}
    held: set[str] = set()
    for ids in _whole_aggregates(world, res):
        # From the input: more than half of this aggregate's records are the bad ones.
        if 2 * sum(i in bad for i in ids) > len(ids):
            held.update(ids)
    return [e for e in scenario["events"] if e["event_id"] not in held]


def _assert_quarantine_and_stockouts(
    world: World, res: Resources, scenario: dict[str, Any]
) -> None:
    # Every bad record is in quarantine, with a reason; nothing else is, but the valid
    # user records of a mostly invalid KPL aggregate, which is quarantined whole.
    quarantined = _quarantined(world, res)
    bad = {b["event_id"] for b in scenario["bad"]}
    assert bad <= set(quarantined)
    mostly_invalid = {i for ids in _whole_aggregates(world, res) for i in ids}
    for ids in _whole_aggregates(world, res):
        # Quarantined whole only when the input made it mostly invalid.
        assert 2 * sum(i in bad for i in ids) > len(ids), ids
    valid_held = {i for i in quarantined if i not in bad}
    assert valid_held <= mostly_invalid
    assert all(quarantined[i] == "kpl_mostly_invalid" for i in valid_held)
    # StockoutCount: the inventory's counter equals the latest stock by event time of the
    # events that were ingested.
    counter = DynamoInventory(res.inventory_table, world.ddb).stockout_count()
    assert counter == _expected_stockouts(_delivered(world, res, scenario))


def _report(world: World, scenario: dict[str, Any], stage: str, **figures: Any) -> None:
    if not REPORT:
        return
    injected = _injected(world)
    line = {
        "test": stage,
        "events": len(scenario["events"]),
        "sent": len(scenario["stream"]),
        "bad": len(scenario["bad"]),
        "faults": sum(injected.values()),
        "by_kind": dict(injected),
        **figures,
    }
    with Path(REPORT).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def _assert_faults_fired(world: World) -> None:
    """The premise of a fault test: faults were injected (the producer's first PutRecords
    always is); how many of each kind goes to hypothesis' statistics."""
    injected = _injected(world)
    total = sum(injected.values())
    assert total >= 1, (world.producer_faults.plan, dict(world.producer_faults.calls))
    event(f"faults injected: {total if total <= 5 else '6+'}")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_given_events_and_faults_when_streamed_then_raw_holds_every_valid_event(
    stack: LocalStack, fast_retries: None, tmp_path: Path, scenario: dict[str, Any]
) -> None:
    """The stream path: every valid event reaches the raw zone (at least once, the
    contract before compaction), every bad one the quarantine, and StockoutCount is exact."""
    world = _world(stack)
    started = time.perf_counter()
    res = world.provision(shards=scenario["shards"], forecast=False, curated=False)
    restarts = _stream_path(world, res, scenario, tmp_path)
    raw_ids = [
        json.loads(line)["event_id"]
        for body in _objects(world, res.lake.raw, "sales/")
        for line in body.splitlines()
    ]
    assert set(raw_ids) == {e["event_id"] for e in _delivered(world, res, scenario)}
    _assert_quarantine_and_stockouts(world, res, scenario)
    _assert_faults_fired(world)
    _report(
        world,
        scenario,
        "stream",
        lost=len({e["event_id"] for e in _delivered(world, res, scenario)} - set(raw_ids)),
        raw_copies=len(raw_ids),
        poller_restarts=restarts,
        seconds=round(time.perf_counter() - started, 3),
    )


@settings(
    max_examples=E2E_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_given_events_and_faults_when_the_whole_pipeline_runs_then_curated_is_exact(
    stack: LocalStack, fast_retries: None, tmp_path: Path, scenario: dict[str, Any]
) -> None:
    """Producer to forecasts: curated = the de-duplicated valid events, quarantine and
    StockoutCount exact, forecasts complete (series x horizon items)."""
    world = _world(stack)
    started = time.perf_counter()
    _SEEN[0] += 1
    forecast = _SEEN[0] % FORECAST_EVERY == 1
    res = world.provision(shards=scenario["shards"], forecast=forecast)
    restarts = _stream_path(world, res, scenario, tmp_path)
    lake = res.lake
    crash = Crasher(scenario["compaction_crash_step"], scenario["compaction_crash_position"])
    compaction_reruns = _rerun(
        run_compaction,
        world,
        raw_bucket=lake.raw,
        curated_bucket=lake.curated,
        database=lake.database,
        session=world.batch_session,
        progress=crash,
        lateness=LATENESS,
    )
    if _objects(world, lake.raw, "sales/"):
        # The premise: with raw objects to compact, the crash struck.
        assert crash.fired is not None, f"no crash at {scenario['compaction_crash_step']}"
        event(f"compaction crash at {scenario['compaction_crash_step']}")
    _assert_faults_fired(world)
    # Curated = the de-duplicated valid events, each exactly once, unchanged.
    rows = table_rows(world.batch_session, lake.database, "sales")
    ids = [r["event_id"] for r in rows]
    events = _delivered(world, res, scenario)
    assert sorted(ids) == sorted(e["event_id"] for e in events)
    by_id = {e["event_id"]: e for e in events}
    for row in rows:
        assert row["quantity"] == by_id[row["event_id"]]["quantity"]
        assert row["stock_on_hand"] == by_id[row["event_id"]].get("stock_on_hand")
    _assert_quarantine_and_stockouts(world, res, scenario)

    forecast_items = 0
    if res.forecast_table is not None:
        _rerun(
            run_forecast,
            world,
            curated_bucket=lake.curated,
            database=lake.database,
            forecast_table=res.forecast_table,
            horizon_days=HORIZON,
            session=world.batch_session,
            # A day in progress is no actual: run once every event's day has ended.
            now=NOW + timedelta(days=1),
        )
        series = {(e["sku_id"], e["location_id"]) for e in events}
        forecast_items = world.ddb.scan(TableName=res.forecast_table, Select="COUNT")["Count"]
        assert forecast_items == len(series) * HORIZON
    _report(
        world,
        scenario,
        "pipeline",
        lost=len(set(by_id) - set(ids)),
        duplicates=len(ids) - len(set(ids)),
        poller_restarts=restarts,
        compaction_reruns=compaction_reruns,
        forecast_items=forecast_items,
        seconds=round(time.perf_counter() - started, 3),
    )
