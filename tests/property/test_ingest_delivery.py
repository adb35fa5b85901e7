"""Acceptance 2: any stream, split into batches, with transient failures and Lambda retries.

Ends with every valid event in the raw zone (at least once) and nothing else, every invalid
one in quarantine, and StockoutCount equal to the ground truth (latest stock per pair by
``(event_time, event_id)``), whatever the failures, re-deliveries and event order.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from functools import cache
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import TransientError
from pipeline.ingest import InMemoryInventory, InMemoryRawStore
from pipeline.local.invoke import import_handler_module
from tests.support.ingest_factories import HANDLER_PATH
from tests.support.kinesis_events import KinesisPut, kinesis_lambda_event, sequence_number

if TYPE_CHECKING:
    from types import ModuleType

ARRIVAL = 1740820630.0
CORRUPTIONS = ("truncate", "hash_in_sku", "negative_quantity", "no_offset")


@cache
def _handler_module() -> ModuleType:
    saved = os.environ.get("RAW_BUCKET")
    os.environ["RAW_BUCKET"] = "raw"
    try:
        return import_handler_module(HANDLER_PATH, "ingest_app_property")
    finally:
        if saved is None:
            os.environ.pop("RAW_BUCKET")
        else:
            os.environ["RAW_BUCKET"] = saved


class Faults:
    """A finite script of failures: each call pops the next flag (then never fails)."""

    def __init__(self, flags: list[bool]) -> None:
        self.flags = list(flags)

    def next(self) -> bool:
        return self.flags.pop(0) if self.flags else False


class FlakyStore(InMemoryRawStore):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def put(self, key: str, body: bytes) -> None:
        if self.faults.next():
            raise TransientError("put: SlowDown (503)")
        super().put(key, body)


class FlakyInventory(InMemoryInventory):
    """Fails before or after committing (the latter is a lost acknowledgement)."""

    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def apply(self, observations: Any) -> int:
        if self.faults.next():
            raise TransientError("inventory: ProvisionedThroughputExceededException (400)")
        count = super().apply(observations)
        if self.faults.next():
            raise TransientError("inventory: ReadTimeoutError")
        return count


@st.composite
def sales_events(draw: st.DrawFn, index: int) -> tuple[dict[str, Any], str | None]:
    event: dict[str, Any] = {
        "event_id": f"e{index}",
        "event_type": draw(st.sampled_from(["sale", "return", "stock_count"])),
        "sku_id": draw(st.sampled_from(["A", "B"])),
        "location_id": draw(st.sampled_from(["L1", "L2"])),
        "quantity": draw(st.integers(0, 3)),
        "event_time": f"2025-03-01T{draw(st.integers(8, 11)):02d}:00:00+00:00",
    }
    stock = draw(st.none() | st.integers(0, 2))
    if stock is not None or event["event_type"] == "stock_count":
        event["stock_on_hand"] = 0 if stock is None else stock
    corruption = draw(st.none() | st.none() | st.sampled_from(CORRUPTIONS))
    return event, corruption


def _encode(event: dict[str, Any], corruption: str | None) -> bytes:
    event = dict(event)
    if corruption == "hash_in_sku":
        event["sku_id"] += "#x"
    elif corruption == "negative_quantity":
        event["quantity"] = -1
    elif corruption == "no_offset":
        event["event_time"] = event["event_time"][:19]
    data = json.dumps(event).encode()
    return data[: len(data) // 2] if corruption == "truncate" else data


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 40))
    events = [draw(sales_events(i)) for i in range(count)]
    cuts = sorted(draw(st.sets(st.integers(1, count - 1), max_size=6))) if count > 1 else []
    bounds = list(zip([0, *cuts], [*cuts, count], strict=True))
    redeliveries = draw(
        st.lists(st.tuples(st.integers(0, count - 1), st.integers(1, 10)), max_size=3)
    )
    return {
        "events": events,
        "batches": bounds,
        "redeliveries": [(s, min(count, s + n)) for s, n in redeliveries],
        "store_faults": draw(st.lists(st.booleans(), max_size=12)),
        "inventory_faults": draw(st.lists(st.booleans(), max_size=12)),
    }


def _ground_truth(events: list[tuple[dict[str, Any], str | None]]) -> int:
    latest: dict[tuple[str, str], tuple[str, str, int]] = {}
    for event, corruption in events:
        if corruption is None and "stock_on_hand" in event:
            pair = (event["sku_id"], event["location_id"])
            version = (event["event_time"], event["event_id"], event["stock_on_hand"])
            if pair not in latest or version[:2] > latest[pair][:2]:
                latest[pair] = version
    return sum(1 for *_, stock in latest.values() if stock == 0)


def _deliver(app: ModuleType, puts: list[KinesisPut]) -> int:
    """Invoke like Lambda: re-deliver from the lowest failed sequence number until acked."""
    attempts = 0
    while puts:
        attempts += 1
        assert attempts < 100, "a batch never succeeded"
        with contextlib.redirect_stdout(io.StringIO()):
            failures = app.lambda_handler(kinesis_lambda_event(puts), None)["batchItemFailures"]
        if not failures:
            return attempts
        lowest = min(f["itemIdentifier"] for f in failures)
        puts = [p for p in puts if p.sequence_number >= lowest]
    return attempts


@settings(max_examples=60, deadline=None)
@given(scenario=scenarios())
def test_given_any_stream_with_faults_and_retries_then_raw_and_stockouts_are_exact(
    scenario: dict[str, Any],
) -> None:
    app = _handler_module()
    store = FlakyStore(Faults(scenario["store_faults"]))
    inventory = FlakyInventory(Faults(scenario["inventory_faults"]))
    app._adapters = lambda: (store, inventory)
    events = scenario["events"]
    puts = [
        KinesisPut(
            _encode(e, c), f"{e['sku_id']}#{e['location_id']}", sequence_number(i + 1), ARRIVAL + i
        )
        for i, (e, c) in enumerate(events)
    ]

    for start, end in [*scenario["batches"], *scenario["redeliveries"]]:
        _deliver(app, puts[start:end])

    raw_ids = [
        json.loads(line)["event_id"]
        for key, body in store.objects.items()
        if key.startswith("sales/")
        for line in body.splitlines()
    ]
    valid_ids = {e["event_id"] for e, c in events if c is None}
    assert set(raw_ids) == valid_ids
    quarantined = {
        json.loads(line)["sequence_number"]
        for key, body in store.objects.items()
        if key.startswith("quarantine/")
        for line in body.splitlines()
    }
    assert quarantined == {sequence_number(i + 1) for i, (_, c) in enumerate(events) if c}
    assert inventory.stockout_count == _ground_truth(events)
    assert inventory.stockout_count == sum(1 for s in inventory.pairs.values() if s.stock == 0)
