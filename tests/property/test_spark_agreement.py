"""Property: the Spark path and the single-process path write the same curated tables.

The same generated raw objects (duplicates, late events, bad lines, two arrival runs,
locations in zones behind and ahead of UTC or all at UTC) go into two fresh lakes; one
is compacted in one process (PyIceberg), the other on Spark in local mode (Iceberg's Spark
runtime), which also crashes at a drawn step of one run and is re-run. The ``sales`` and
``daily_demand`` tables, read through their current snapshots, must hold the same rows
(their data files' names differ: each writer names its own), each table one commit a run
that changed it, and the quarantine and the manifest the same lines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.compaction import run_compaction
from pipeline.spark.compaction import run_compaction_spark
from tests.support.compaction_lake import Lake, fresh_lake, table_rows
from tests.support.crash import CRASH_STEPS, Crash, Crasher
from tests.support.crash import crash_run as pick_crash_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pipeline.local.stack import LocalStack

BASE = datetime(2024, 5, 10, tzinfo=UTC)
PRICES = [0.99, 1.25, 2.5, 3.1]
#: The locations table of a lake (``None``: no table, every location at UTC).
ZONES = [
    None,
    {"L1": "America/Los_Angeles", "L2": "Asia/Tokyo"},
    {"L1": "Pacific/Kiritimati"},
]
_SESSIONS: dict[str, Any] = {}


@st.composite
def raw_objects(draw: st.DrawFn) -> dict[str, Any]:
    events: list[Any] = []
    for i in range(draw(st.integers(1, 16))):
        kind = draw(st.sampled_from(["sale", "sale", "return", "stock_count"]))
        stock = draw(st.none() | st.integers(0, 5)) if kind != "stock_count" else 3
        events.append(
            {
                "event_id": f"ev-{i}",
                "event_type": kind,
                "sku_id": draw(st.sampled_from(["A", "B", "C"])),
                "location_id": draw(st.sampled_from(["L1", "L2"])),
                "quantity": 0 if kind == "stock_count" else draw(st.integers(1, 5)),
                "event_time": (
                    BASE
                    + timedelta(days=draw(st.integers(0, 5)), minutes=draw(st.integers(0, 1439)))
                ).isoformat(),
                **({} if stock is None else {"stock_on_hand": stock}),
                **({} if kind != "sale" else {"unit_price": draw(st.sampled_from(PRICES))}),
            }
        )
    lines: list[Any] = events + draw(st.lists(st.sampled_from(events), max_size=6))
    lines += draw(st.lists(st.sampled_from(["{not json", '{"event_id": 1}', "[]"]), max_size=2))
    lines = [lines[i] for i in draw(st.permutations(range(len(lines))))]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(lines) - 1)), max_size=4)))
    objects = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True) if a < b]
    return {
        "objects": objects,
        "first_run": (first_run := draw(st.integers(0, len(objects)))),
        "crash_run": pick_crash_run(draw, len(objects), first_run),
        # A run may hold only bad lines (no day to write), so not "write partitions".
        "crash_step": draw(st.sampled_from([s for s in CRASH_STEPS if s != "write partitions"])),
        "crash_position": draw(st.floats(0, 1)),
    }


def _put(s3: Any, lake: Lake, run: int, objects: list[list[Any]], first: int) -> None:
    for seq, lines in enumerate(objects, start=first):
        body = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
        key = f"sales/2024/05/{16 + run:02d}/shardId-0-{seq:06d}-{seq:06d}.json"
        s3.put_object(Bucket=lake.raw, Key=key, Body=body.encode())


def _curated(s3: Any, session: Any, lake: Lake) -> dict[str, Any]:
    """The tables' rows, in a stable order, and every other curated object by key: the
    quarantine's lines, the manifest's state. A demand row's mean price is a sum over the
    day's sales, which the engines add in different orders: it is compared to 12 digits."""
    out: dict[str, Any] = {}
    for obj in s3.list_objects_v2(Bucket=lake.curated).get("Contents", []):
        key = obj["Key"]
        if key.startswith(("sales/", "daily_demand/")):
            continue  # the tables' data and metadata files: compared through the tables
        body = s3.get_object(Bucket=lake.curated, Key=key)["Body"].read()
        if key.endswith("manifest.json"):
            manifest = json.loads(body)
            out[key] = (manifest["days"], manifest["watermark"], manifest["max_event_date"])
        else:  # quarantine: the source names the lake's own raw bucket
            out[key] = body.decode().replace(lake.raw, "<raw>").splitlines()
    out["sales"] = sorted(
        table_rows(session, lake.database, "sales"), key=lambda r: (r["event_time"], r["event_id"])
    )
    demand = table_rows(session, lake.database, "daily_demand")
    for row in demand:
        if row["avg_unit_price"] is not None:
            row["avg_unit_price"] = round(row["avg_unit_price"], 12)
    out["daily_demand"] = sorted(demand, key=lambda r: (r["date"], r["sku_id"], r["location_id"]))
    return out


@pytest.mark.parametrize("zones", ZONES, ids=["utc", "west-and-east", "utc+14"])
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=raw_objects())
def test_given_the_same_raw_objects_when_compacted_on_spark_then_curated_is_identical(
    stack: LocalStack, spark: SparkSession, zones: dict[str, str] | None, scenario: dict[str, Any]
) -> None:
    session = _SESSIONS.setdefault(stack.stack_name, stack.session())
    s3 = session.client("s3")
    single, distributed = fresh_lake(stack, session), fresh_lake(stack, session)
    split = scenario["first_run"]
    if zones:
        rows = "".join(f"{loc},{zone}\n" for loc, zone in zones.items())
        table = f"location_id,time_zone\n{rows}"
        for lake in (single, distributed):
            s3.put_object(Bucket=lake.curated, Key="reference/locations/l.csv", Body=table.encode())
    runs = [scenario["objects"][:split], scenario["objects"][split:]]
    for run, objects in enumerate(runs):
        first = 1 + (0 if run == 0 else split)
        for lake in (single, distributed):
            _put(s3, lake, run, objects, first)
        run_compaction(
            raw_bucket=single.raw,
            curated_bucket=single.curated,
            database=single.database,
            session=session,
        )
        kwargs = {
            "spark": spark,
            "raw_bucket": distributed.raw,
            "curated_bucket": distributed.curated,
            "database": distributed.database,
            "session": session,
        }
        crash = Crasher(
            scenario["crash_step"] if run == scenario["crash_run"] else None,
            scenario["crash_position"],
        )
        try:
            run_compaction_spark(**kwargs, progress=crash)
        except Crash:
            run_compaction_spark(**kwargs)
        if run == scenario["crash_run"]:
            assert crash.fired is not None, scenario
            event(f"crash at {scenario['crash_step']}")

    assert _curated(s3, session, distributed) == _curated(s3, session, single)
