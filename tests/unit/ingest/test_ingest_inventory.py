"""Latest known stock per pair and the StockoutCount transitions."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.contracts import SalesEvent
from pipeline.ingest import InMemoryInventory, PairState, StockObservation, observations, transition


def _obs(
    t: int, stock: int, event_id: str = "e", pair: tuple[str, str] = ("S", "L")
) -> StockObservation:
    return StockObservation(pair[0], pair[1], t, event_id, stock)


def test_given_no_state_when_stock_is_zero_then_the_counter_rises() -> None:
    assert transition(None, _obs(1, 0)) == (PairState(1, "e", 0), 1)


def test_given_out_of_stock_when_a_newer_positive_stock_arrives_then_the_counter_falls() -> None:
    assert transition(PairState(1, "e", 0), _obs(2, 5)) == (PairState(2, "e", 5), -1)


def test_given_a_state_when_the_same_event_is_redelivered_then_nothing_changes() -> None:
    assert transition(PairState(5, "e", 0), _obs(5, 0)) is None


def test_given_a_state_when_an_older_event_arrives_then_nothing_changes() -> None:
    assert transition(PairState(5, "e", 3), _obs(4, 0)) is None


def test_given_equal_event_times_then_the_larger_event_id_wins_whatever_the_order() -> None:
    a, b = _obs(5, 0, "a"), _obs(5, 7, "b")
    forward, backward = InMemoryInventory(), InMemoryInventory()
    assert forward.apply([a]) == 1 and forward.apply([b]) == 0
    assert backward.apply([b]) == 0 and backward.apply([a]) == 0


def test_given_events_then_observations_keep_the_newest_stock_per_pair_only() -> None:
    def event(n: int, hour: int, stock: int | None, sku: str = "S") -> SalesEvent:
        return SalesEvent(
            f"e{n}", "sale", sku, "L", 1, datetime(2025, 1, 1, hour, tzinfo=UTC), stock
        )

    result = observations(
        [event(1, 9, 4), event(2, 11, 0), event(3, 10, 2), event(4, 12, None), event(5, 8, 3, "T")]
    )

    assert sorted((o.sku_id, o.event_id, o.stock) for o in result) == [
        ("S", "e2", 0),
        ("T", "e5", 3),
    ]
