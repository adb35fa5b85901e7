"""A seeded synthetic FMCG world: SKUs x locations selling, running out and being refilled.

The history is a small inventory simulation, so the patterns a forecaster and the stockout
metric look for are really there rather than painted on:

- weekly seasonality (weekends sell more), per-pair base demand from a log-normal;
- promotions per SKU (a week of uplifted demand at a discounted price);
- slow movers with intermittent demand (most days nothing, some days one unit);
- stock: each pair starts with a counted stock, sales draw it down (a sale never sells
  more than is on hand, so demand beyond stock is lost), a weekly replenishment refills it
  to an order-up-to level and is reported as a ``stock_count``; a missed delivery
  (``stockout_rate``) or a promotion week lets stock hit 0, and it stays 0 until the next
  replenishment ``stock_count``;
- returns (damaged goods: they do not go back on the shelf, so they carry no stock);
- optional exact duplicates (same ``event_id`` and body) and late events (emitted days
  after their ``event_time``).

Everything derives from ``SynthConfig.seed``; the same config gives the same events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

#: Demand multiplier per weekday, Monday first: weekend shopping peaks.
WEEKDAY_FACTORS: tuple[float, ...] = (0.85, 0.8, 0.9, 1.0, 1.2, 1.45, 1.1)
#: Stores sell between these hours (UTC, for simplicity).
OPEN_HOUR, CLOSE_HOUR = 8, 21
PROMO_DAYS = 7
PROMO_UPLIFT = 2.2
PROMO_PRICE_FACTOR = 0.75
#: Probability that a slow mover sells at all on a given day.
SLOW_MOVER_DAILY_P = 0.12


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``events_per_day`` is the network's average sale events per day."""

    seed: int = 7
    n_skus: int = 20
    n_locations: int = 5
    start: date = field(default_factory=lambda: datetime.now(UTC).date() - timedelta(days=28))
    days: int = 28
    events_per_day: float = 1000.0
    promo_rate: float = 0.08
    slow_mover_share: float = 0.25
    stockout_rate: float = 0.15
    return_rate: float = 0.01
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    #: Replenishment fills stock to this many days of expected demand.
    cover_days: float = 8.0

    def __post_init__(self) -> None:
        if self.n_skus < 1 or self.n_locations < 1 or self.days < 1:
            raise ValueError("n_skus, n_locations and days must be >= 1")
        for name in (
            "promo_rate",
            "slow_mover_share",
            "stockout_rate",
            "return_rate",
            "duplicate_rate",
            "late_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class _Pair:
    sku_id: str
    location_id: str
    daily_rate: float  # expected sale events per day before seasonality and promotions
    slow: bool
    unit_price: float
    replenish_weekday: int


def sku_ids(config: SynthConfig) -> list[str]:
    """The SKU ids of the synthetic world."""
    return [f"SKU-{i:05d}" for i in range(1, config.n_skus + 1)]


def location_ids(config: SynthConfig) -> list[str]:
    """The location ids (stores) of the synthetic world."""
    return [f"LOC-{i:03d}" for i in range(1, config.n_locations + 1)]


def _pairs(config: SynthConfig) -> list[_Pair]:
    # A separate stream for the world's shape, so adding days does not change the world.
    rng = np.random.default_rng([config.seed, 1])
    skus, locations = sku_ids(config), location_ids(config)
    prices = np.round(rng.uniform(0.5, 15.0, size=len(skus)), 2)
    n = len(skus) * len(locations)
    slow = rng.random(n) < config.slow_mover_share
    weights = rng.lognormal(0.0, 0.8, size=n)
    weights[slow] = 0.0
    fast_total = float(weights.sum()) or 1.0
    pairs = []
    for index in range(n):
        sku_index, loc_index = divmod(index, len(locations))
        rate = (
            SLOW_MOVER_DAILY_P
            if slow[index]
            else config.events_per_day * float(weights[index]) / fast_total
        )
        pairs.append(
            _Pair(
                sku_id=skus[sku_index],
                location_id=locations[loc_index],
                daily_rate=rate,
                slow=bool(slow[index]),
                unit_price=float(prices[sku_index]),
                replenish_weekday=loc_index % 7,
            )
        )
    return pairs


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _promotions(config: SynthConfig, rng: np.random.Generator) -> dict[str, set[int]]:
    """Promotion days (indices) per SKU: weeks starting at random with ``promo_rate``."""
    start_p = config.promo_rate / PROMO_DAYS
    promos: dict[str, set[int]] = {}
    for sku in sku_ids(config):
        days: set[int] = set()
        day = 0
        while day < config.days:
            if rng.random() < start_p:
                days.update(range(day, min(day + PROMO_DAYS, config.days)))
                day += PROMO_DAYS
            else:
                day += 1
        promos[sku] = days
    return promos


def _simulate_pair(
    pair: _Pair, config: SynthConfig, promo_days: set[int], rng: np.random.Generator
) -> list[tuple[datetime, dict[str, Any]]]:
    expected_daily_units = pair.daily_rate * 1.4  # transactions x mean basket size
    order_up_to = max(3, math.ceil(expected_daily_units * config.cover_days))
    stock = order_up_to
    out: list[tuple[datetime, dict[str, Any]]] = []
    midnight = datetime.combine(config.start, time(), tzinfo=UTC)
    out.append(
        (
            midnight,
            {
                "event_type": "stock_count",
                "quantity": 0,
                "stock_on_hand": stock,
            },
        )
    )
    for day_index in range(config.days):
        day_start = midnight + timedelta(days=day_index)
        weekday = day_start.weekday()
        if day_index > 0 and weekday == pair.replenish_weekday:
            # A missed delivery is how most real stockouts start.
            if rng.random() >= config.stockout_rate:
                stock = order_up_to
                out.append(
                    (
                        day_start + timedelta(hours=6),
                        {
                            "event_type": "stock_count",
                            "quantity": 0,
                            "stock_on_hand": stock,
                        },
                    )
                )
        on_promo = day_index in promo_days
        if pair.slow:
            n_tx = int(rng.random() < pair.daily_rate * WEEKDAY_FACTORS[weekday])
        else:
            lam = pair.daily_rate * WEEKDAY_FACTORS[weekday] * (PROMO_UPLIFT if on_promo else 1)
            n_tx = int(rng.poisson(lam))
        seconds = np.sort(rng.uniform(OPEN_HOUR * 3600, CLOSE_HOUR * 3600, size=n_tx))
        quantities = rng.geometric(0.7, size=n_tx)
        price = round(pair.unit_price * (PROMO_PRICE_FACTOR if on_promo else 1.0), 2)
        for second, wanted in zip(seconds, quantities, strict=True):
            if stock == 0:
                continue  # a lost sale: the shelf is empty
            quantity = min(int(wanted), stock)
            stock -= quantity
            out.append(
                (
                    day_start + timedelta(seconds=float(second)),
                    {
                        "event_type": "sale",
                        "quantity": quantity,
                        "stock_on_hand": stock,
                        "unit_price": price,
                    },
                )
            )
        if n_tx and rng.random() < config.return_rate * n_tx:
            second = float(rng.uniform(OPEN_HOUR * 3600, CLOSE_HOUR * 3600))
            out.append(
                (
                    day_start + timedelta(seconds=second),
                    {
                        "event_type": "return",
                        "quantity": 1,
                        "unit_price": price,
                    },
                )
            )
    out.sort(key=lambda item: item[0])
    return out


def generate_events(config: SynthConfig) -> list[dict[str, Any]]:
    """The history as contract v1 event dicts, in stream order (see the module docstring).

    Without duplicates or late events the stream is ordered by ``event_time``. Late events
    sit one to three days after their ``event_time``; duplicates repeat an earlier event's
    ``event_id`` and body a little later in the stream.
    """
    rng = np.random.default_rng([config.seed, 2])
    promos = _promotions(config, rng)
    timed: list[tuple[datetime, dict[str, Any]]] = []
    for pair in _pairs(config):
        for moment, body in _simulate_pair(pair, config, promos[pair.sku_id], rng):
            event = {
                "event_id": "",
                "event_type": body.pop("event_type"),
                "sku_id": pair.sku_id,
                "location_id": pair.location_id,
                **body,
                "event_time": _iso(moment),
            }
            timed.append((moment, event))
    timed.sort(key=lambda item: item[0])
    prefix = f"h{config.seed}-{config.start:%Y%m%d}"
    for index, (_, event) in enumerate(timed):
        event["event_id"] = f"{prefix}-{index:09d}"
    if not config.late_rate and not config.duplicate_rate:
        return [event for _, event in timed]
    return _disorder(timed, config, np.random.default_rng([config.seed, 3]))


def _disorder(
    timed: list[tuple[datetime, dict[str, Any]]], config: SynthConfig, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Move late events later in the stream and add exact duplicates."""
    last = timed[-1][0] if timed else datetime.now(UTC)
    positioned: list[tuple[datetime, int, dict[str, Any]]] = []
    for index, (moment, event) in enumerate(timed):
        position = moment
        if rng.random() < config.late_rate:
            position = min(last, moment + timedelta(days=float(rng.uniform(1.0, 3.0))))
        positioned.append((position, index, event))
        if rng.random() < config.duplicate_rate:
            again = position + timedelta(seconds=float(rng.uniform(1.0, 600.0)))
            positioned.append((again, index, dict(event)))
    positioned.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in positioned]


def live_events(
    config: SynthConfig,
    start_time: datetime,
    n: int,
    *,
    spacing_s: float = 0.0,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    """``n`` events happening "now" for the live part of the demo.

    ``event_time`` is ``start_time + i * spacing_s``; the ids embed ``start_time`` (ms) and
    ``first_index + i``, so successive calls never repeat an id. Sales dominate; a few stock
    counts (some of them 0, which is a stockout) and returns are mixed in. Deterministic for
    the same ``(config.seed, start_time, first_index)``.
    """
    if start_time.tzinfo is None:
        raise ValueError("start_time must carry a UTC offset")
    pairs = _pairs(config)
    weights = np.array([p.daily_rate for p in pairs], dtype=float)
    weights /= weights.sum()
    stamp = int(start_time.timestamp() * 1000)
    rng = np.random.default_rng([config.seed, 4, stamp, first_index])
    chosen = rng.choice(len(pairs), size=n, p=weights)
    kinds = rng.random(n)
    events: list[dict[str, Any]] = []
    for i in range(n):
        pair = pairs[int(chosen[i])]
        event: dict[str, Any] = {
            "event_id": f"l{config.seed}-{stamp}-{first_index + i:09d}",
            "event_type": "sale",
            "sku_id": pair.sku_id,
            "location_id": pair.location_id,
            "quantity": int(rng.geometric(0.7)),
            "unit_price": pair.unit_price,
            "event_time": _iso(start_time + timedelta(seconds=i * spacing_s)),
        }
        if kinds[i] < 0.05:
            stock = 0 if rng.random() < config.stockout_rate else int(rng.integers(1, 60))
            event.update(event_type="stock_count", quantity=0, stock_on_hand=stock)
            del event["unit_price"]
        elif kinds[i] < 0.05 + max(config.return_rate, 0.01):
            event.update(event_type="return", quantity=1)
        events.append(event)
    return events
