"""Property: whatever the duplicates, late events, raw object splits and crash point, a
re-run converges to the de-duplicated events, each in its event-date partition, with the
catalog listing exactly the partitions that exist and daily demand equal to a pure
recomputation."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.compaction import run_compaction
from tests.support.compaction_lake import curated_rows, fresh_lake, snapshot_files, table_rows
from tests.support.crash import CRASH_STEPS, Crash, Crasher
from tests.support.crash import crash_run as pick_crash_run

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack

BASE = datetime(2024, 5, 10, tzinfo=UTC)


_SESSIONS: dict[str, Any] = {}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 14))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["sale", "sale", "return", "stock_count"]))
        stock = (
            draw(st.none() | st.integers(0, 5))
            if kind != "stock_count"
            else draw(st.integers(0, 5))
        )
        events.append(
            {
                "event_id": f"ev-{i}",
                "event_type": kind,
                "sku_id": draw(st.sampled_from(["A", "B"])),
                "location_id": draw(st.sampled_from(["L1", "L2"])),
                "quantity": 0 if kind == "stock_count" else draw(st.integers(1, 5)),
                "event_time": (
                    BASE
                    + timedelta(days=draw(st.integers(0, 3)), minutes=draw(st.integers(0, 1439)))
                ).isoformat(),
                **({} if stock is None else {"stock_on_hand": stock}),
            }
        )
    # Duplicates (retries deliver the same record again) and an arbitrary arrival order.
    copies = events + draw(st.lists(st.sampled_from(events), max_size=6))
    order = draw(st.permutations(range(len(copies))))
    lines = [copies[i] for i in order]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(lines) - 1)), max_size=4)))
    objects = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True) if a < b]
    # Objects arrive over two runs; arrival dates are after the events (late data).
    first_run = draw(st.integers(0, len(objects)))
    # The crash strikes a run that has objects (one without them reports no step at all), at
    # a step every such run reports, at a position within that step's real count.
    crash_run = pick_crash_run(draw, len(objects), first_run)
    return {
        "events": events,
        "objects": objects,
        "first_run": first_run,
        "crash_run": crash_run,
        "crash_step": draw(st.sampled_from(CRASH_STEPS)),
        "crash_position": draw(st.floats(0, 1)),
    }


def _expected_demand(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_pair[(e["sku_id"], e["location_id"])].append(e)
    day_of = {e["event_id"]: datetime.fromisoformat(e["event_time"]).date() for e in events}
    end = max(day_of.values())
    rows = []
    for pair, evs in by_pair.items():
        day = min(day_of[e["event_id"]] for e in evs)
        while day <= end:
            today = [e for e in evs if day_of[e["event_id"]] == day]
            known = sorted(
                (e for e in evs if day_of[e["event_id"]] <= day and "stock_on_hand" in e),
                key=lambda e: (e["event_time"], e["event_id"]),
            )
            stock = known[-1]["stock_on_hand"] if known else None
            rows.append(
                (
                    *pair,
                    day,
                    sum(e["quantity"] for e in today if e["event_type"] == "sale"),
                    sum(e["quantity"] for e in today if e["event_type"] == "return"),
                    stock,
                    stock == 0,
                )
            )
            day += timedelta(days=1)
    return sorted(rows)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_given_random_raw_and_a_crash_when_rerun_then_curated_is_exact(
    stack: LocalStack, scenario: dict[str, Any]
) -> None:
    # One session per stack: a new boto3 session reloads every service model (slow).
    session = _SESSIONS.setdefault(stack.stack_name, stack.session())
    lake = fresh_lake(stack, session)
    s3 = session.client("s3")
    runs = [
        scenario["objects"][: scenario["first_run"]],
        scenario["objects"][scenario["first_run"] :],
    ]
    seq = 0
    for run, objects in enumerate(runs):
        for lines in objects:
            seq += 1
            key = f"sales/2024/05/{14 + run:02d}/shardId-0-{seq:06d}-{seq:06d}.json"
            body = "".join(json.dumps(e) + "\n" for e in lines)
            s3.put_object(Bucket=lake.raw, Key=key, Body=body.encode())
        crash = Crasher(
            scenario["crash_step"] if run == scenario["crash_run"] else None,
            scenario["crash_position"],
        )
        kwargs = {
            "raw_bucket": lake.raw,
            "curated_bucket": lake.curated,
            "database": lake.database,
            "session": session,
        }
        try:
            run_compaction(**kwargs, progress=crash)
        except Crash:
            run_compaction(**kwargs)
        if run == scenario["crash_run"]:
            # The premise: the crash did strike (hypothesis --hypothesis-show-statistics
            # counts where).
            assert crash.fired is not None, scenario
            event(f"crash at {scenario['crash_step']}")
    # A further run with nothing new changes nothing.
    assert run_compaction(**kwargs).raw_objects == 0

    sales_rows = table_rows(session, lake.database, "sales")
    for row in sales_rows:
        # Every event sits in the partition of its event date.
        assert (row["year"], row["month"], row["day"]) == (
            f"{row['event_time']:%Y}",
            f"{row['event_time']:%m}",
            f"{row['event_time']:%d}",
        )
    events = scenario["events"]
    assert sorted(r["event_id"] for r in sales_rows) == sorted(e["event_id"] for e in events)
    by_id = {e["event_id"]: e for e in events}
    for row in sales_rows:
        source = by_id[row["event_id"]]
        assert row["quantity"] == source["quantity"]
        assert row["stock_on_hand"] == source.get("stock_on_hand")
        assert row["event_time"] == datetime.fromisoformat(source["event_time"]).replace(
            tzinfo=None
        )
    for table in ("sales", "daily_demand"):
        # The table's files keep the year=/month=/day= layout of their partition.
        for path, (year, month, day) in snapshot_files(session, lake.database, table):
            assert f"/{table}/data/year={year}/month={month}/day={day}/" in path
    frame = curated_rows(session, lake.database, "daily_demand")
    got = sorted(
        (
            r["sku_id"],
            r["location_id"],
            r["date"],
            r["units_sold"],
            r["units_returned"],
            None
            if r["end_of_day_stock"] is None or str(r["end_of_day_stock"]) == "<NA>"
            else int(r["end_of_day_stock"]),
            bool(r["stockout"]),
        )
        for r in frame.astype(object).to_dict("records")
    )
    assert got == _expected_demand(events)


def test_given_expected_demand_reference_when_stock_unknown_then_stockout_false() -> None:
    """The reference itself: a pair with no stock reading has no stock and no stockout."""
    rows = _expected_demand(
        [
            {
                "event_id": "x",
                "event_type": "sale",
                "sku_id": "A",
                "location_id": "L1",
                "quantity": 2,
                "event_time": BASE.isoformat(),
            }
        ]
    )
    assert rows == [("A", "L1", date(2024, 5, 10), 2, 0, None, False)]


pytestmark = pytest.mark.slow
