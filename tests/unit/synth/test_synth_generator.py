"""The synthetic FMCG generator: deterministic, valid, and with the patterns it promises."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import pytest

from pipeline.contracts import validate_event
from pipeline.synth import SynthConfig, generate_events, live_events

START = date(2024, 3, 4)  # a Monday
CONFIG = SynthConfig(seed=11, n_skus=12, n_locations=4, start=START, days=28, events_per_day=600)


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return generate_events(CONFIG)


def test_given_the_same_seed_when_generated_twice_then_events_are_identical(history):
    assert generate_events(CONFIG) == history
    assert generate_events(SynthConfig(**{**CONFIG.__dict__, "seed": 12})) != history


def test_given_a_history_when_validated_then_every_event_meets_the_contract(history):
    for event in history:
        validate_event(event, now=datetime(2024, 4, 2, tzinfo=UTC))
    assert len({e["event_id"] for e in history}) == len(history)
    assert {e["event_type"] for e in history} == {"sale", "return", "stock_count"}
    assert [e["event_time"] for e in history] == sorted(e["event_time"] for e in history)


def test_given_a_history_when_sales_are_summed_per_weekday_then_weekends_sell_more(history):
    units: Counter[int] = Counter()
    for e in history:
        if e["event_type"] == "sale":
            units[datetime.fromisoformat(e["event_time"]).weekday()] += e["quantity"]
    assert units[5] > units[1] * 1.3  # Saturday vs Tuesday


def test_given_a_history_when_stock_hits_zero_then_it_stays_zero_until_a_stock_count(history):
    stock: dict[tuple[str, str], int] = {}
    stockouts = 0
    for e in history:
        pair = (e["sku_id"], e["location_id"])
        if e["event_type"] == "sale":
            assert stock[pair] > 0, f"sold from an empty shelf: {e}"
            assert e["stock_on_hand"] == stock[pair] - e["quantity"]
            stock[pair] = e["stock_on_hand"]
            stockouts += stock[pair] == 0
        elif e["event_type"] == "stock_count":
            stock[pair] = e["stock_on_hand"]
    assert stockouts >= 5


def test_given_slow_movers_when_generated_then_some_pairs_sell_on_few_days(history):
    days_with_sales: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in history:
        if e["event_type"] == "sale":
            days_with_sales[(e["sku_id"], e["location_id"])].add(e["event_time"][:10])
    all_pairs = {(e["sku_id"], e["location_id"]) for e in history}
    intermittent = [p for p in all_pairs if len(days_with_sales.get(p, ())) <= CONFIG.days // 3]
    assert len(intermittent) >= 3


def test_given_promotions_when_generated_then_some_sales_are_discounted(history):
    prices: dict[str, set[float]] = defaultdict(set)
    for e in history:
        if e["event_type"] == "sale":
            prices[e["sku_id"]].add(e["unit_price"])
    assert any(len(p) == 2 for p in prices.values())


def test_given_duplicates_and_late_events_when_asked_then_both_appear():
    config = SynthConfig(**{**CONFIG.__dict__, "duplicate_rate": 0.05, "late_rate": 0.05})
    events = generate_events(config)
    counts = Counter(e["event_id"] for e in events)
    duplicated = [i for i, c in counts.items() if c > 1]
    assert duplicated
    first = {e["event_id"]: e for e in reversed(events)}
    assert all(e == first[e["event_id"]] for e in events if e["event_id"] in set(duplicated))
    late = 0
    latest_seen = ""
    for e in events:
        if e["event_time"] < latest_seen[:10]:  # a day or more before the stream position
            late += 1
        latest_seen = max(latest_seen, e["event_time"])
    assert late > 0


def test_given_live_events_when_generated_then_valid_unique_and_stamped_now():
    now = datetime.now(UTC)
    first = live_events(CONFIG, now, 200, spacing_s=0.01)
    second = live_events(CONFIG, now, 200, spacing_s=0.01, first_index=200)
    for e in first + second:
        validate_event(e)
    assert len({e["event_id"] for e in first + second}) == 400
    assert first[0]["event_time"] == now.isoformat(timespec="milliseconds")
    assert live_events(CONFIG, now, 200, spacing_s=0.01) == first


def test_given_a_rate_outside_0_1_when_configured_then_value_error():
    with pytest.raises(ValueError, match=r"^stockout_rate must be within \[0, 1\], got 1.5$"):
        SynthConfig(stockout_rate=1.5)
