"""Inventory state for StockoutCount: the latest known stock per SKU x location.

StockoutCount is the number of pairs whose latest known stock is 0, which needs state
beyond one batch. Each pair keeps the version ``(event_time, event_id)`` of the event that
set its stock; only a strictly newer version replaces it, so re-delivered, retried and
out-of-order events change nothing (ties on ``event_time`` go to the larger ``event_id``,
so the outcome does not depend on arrival order). A counter moves by the transitions
(in stock -> out of stock: +1, back: -1). In DynamoDB the pair update and the counter delta
commit in one transaction whose condition is the version that was read, so a concurrent
or repeated writer can never count a transition twice. The counter is read in the same
BatchGetItem as the pairs, so a batch costs one read and one write round trip per 99 pairs.
(Single conditional PutItems for the changes that move no counter would keep the invariant
at half the write capacity, but measured on the emulator they cost more than the
transaction per item, so every change goes in the transaction.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import TRANSACTION_CANCELED, Backoff, error_code, translate
from pipeline.errors import TransientError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from pipeline.contracts import SalesEvent

Pair = tuple[str, str]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
COUNTER_KEY: Final = "COUNTER#stockout"
#: TransactWriteItems takes at most 100 items: 99 pairs and the counter.
_PAIRS_PER_TRANSACTION: Final = 99
_BATCH_GET_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class StockObservation:
    """The stock of one pair as of one event."""

    sku_id: str
    location_id: str
    event_time_us: int
    event_id: str
    stock: int

    @property
    def pair(self) -> Pair:
        return (self.sku_id, self.location_id)

    @property
    def version(self) -> tuple[int, str]:
        return (self.event_time_us, self.event_id)


@dataclass(frozen=True, slots=True)
class PairState:
    """What the state holds for one pair: the version that set it and the stock."""

    event_time_us: int
    event_id: str
    stock: int

    @property
    def version(self) -> tuple[int, str]:
        return (self.event_time_us, self.event_id)


def epoch_microseconds(moment: datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // _MICROSECOND


def observations(events: Iterable[SalesEvent]) -> list[StockObservation]:
    """The newest stock observation per pair among ``events`` (events without stock skip)."""
    # Observations are built for the winners only: a batch often repeats a pair. Aware
    # datetimes order exactly as their epoch microseconds, so only winners are converted.
    newest: dict[Pair, tuple[tuple[datetime, str], int]] = {}
    for event in events:
        stock = event.stock_on_hand
        if stock is None:
            continue
        pair = (event.sku_id, event.location_id)
        version = (event.event_time, event.event_id)
        seen = newest.get(pair)
        if seen is None or version > seen[0]:
            newest[pair] = (version, stock)
    return [
        StockObservation(sku_id, location_id, epoch_microseconds(moment), event_id, stock)
        for (sku_id, location_id), ((moment, event_id), stock) in newest.items()
    ]


def transition(current: PairState | None, obs: StockObservation) -> tuple[PairState, int] | None:
    """The new state and counter delta if ``obs`` is newer than ``current``, else None."""
    if current is not None and current.version >= obs.version:
        return None
    was_out = current is not None and current.stock == 0
    delta = int(obs.stock == 0) - int(was_out)
    return PairState(obs.event_time_us, obs.event_id, obs.stock), delta


#: A pending write: the observation, the state read, the state to store, the counter delta.
_Change = tuple[StockObservation, PairState | None, PairState, int]


class InventoryState(Protocol):
    """Where pair states and the stockout counter live."""

    def apply(self, observations: Sequence[StockObservation]) -> int:
        """Apply the observations idempotently; return the stockout count afterwards."""


class InMemoryInventory:
    """An :class:`InventoryState` in a dict; for tests and benchmarks."""

    def __init__(self) -> None:
        self.pairs: dict[Pair, PairState] = {}
        self.stockout_count = 0

    def apply(self, observations: Sequence[StockObservation]) -> int:
        """Apply newer observations and move the counter by their transitions."""
        for obs in observations:
            change = transition(self.pairs.get(obs.pair), obs)
            if change is not None:
                self.pairs[obs.pair], delta = change
                self.stockout_count += delta
        return self.stockout_count


def _pair_key(pair: Pair) -> str:
    # '#' never occurs in ids (the contract forbids it), so the key is unambiguous.
    return f"PAIR#{pair[0]}#{pair[1]}"


class DynamoInventory:
    """An :class:`InventoryState` in one DynamoDB table (hash key ``PK``, string)."""

    def __init__(
        self,
        table_name: str,
        dynamodb_client: DynamoDBClient,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self._ddb = dynamodb_client
        self._max_attempts = max_attempts
        # Full jitter: the conflicts retried here are between concurrent writers, which a
        # fixed schedule would line up to collide again.
        self._backoff = Backoff(base_s=backoff_s, cap_s=max_backoff_s, jitter="full", sleep=sleep)

    def apply(self, observations: Sequence[StockObservation]) -> int:
        """Apply newer observations in transactions; retry on write conflicts.

        Returns the counter as of the last read plus the deltas committed since (without
        concurrent writers, the counter afterwards). Raises :class:`TransientError` when
        conflicts or throttling outlast the attempts.
        """
        pending = {obs.pair: obs for obs in observations}
        count: int | None = None
        for attempt in range(self._max_attempts):
            if attempt and not pending:
                break
            if attempt:
                self._backoff.wait(attempt + 1)
            current, count = self._read(list(pending))
            changes: list[_Change] = []
            for pair, obs in pending.items():
                old = current.get(pair)
                change = transition(old, obs)
                if change is not None:
                    changes.append((obs, old, *change))
            pending = {}
            for start in range(0, len(changes), _PAIRS_PER_TRANSACTION):
                chunk = changes[start : start + _PAIRS_PER_TRANSACTION]
                if self._commit(chunk):
                    count += sum(delta for *_, delta in chunk)
                else:
                    pending.update({obs.pair: obs for obs, *_ in chunk})
        if pending:
            raise TransientError(
                f"inventory state {self.table_name}: {len(pending)} pairs still conflicting "
                f"after {self._max_attempts} attempts"
            )
        return count if count is not None else self.stockout_count()

    def stockout_count(self) -> int:
        """The counter item's value (0 before the first stock-out)."""
        try:
            item = self._ddb.get_item(
                TableName=self.table_name,
                Key={"PK": {"S": COUNTER_KEY}},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e,
                f"get {COUNTER_KEY} from {self.table_name}",
                service="dynamodb",
                resource=self.table_name,
            ) from e
        return int(item["count"]["N"]) if item and "count" in item else 0

    def _read(self, pairs: list[Pair]) -> tuple[dict[Pair, PairState], int]:
        """The stored states of ``pairs`` and the counter, in consistent BatchGetItem reads."""
        by_key = {_pair_key(p): p for p in pairs}
        states: dict[Pair, PairState] = {}
        count = 0
        keys = [COUNTER_KEY, *by_key]
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            request: Any = {
                self.table_name: {
                    "Keys": [{"PK": {"S": k}} for k in keys[start : start + _BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:
                try:
                    response = self._ddb.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as e:
                    raise translate(
                        e,
                        f"batch get from {self.table_name}",
                        service="dynamodb",
                        resource=self.table_name,
                    ) from e
                for item in response.get("Responses", {}).get(self.table_name, []):
                    key = item["PK"]["S"]
                    if key == COUNTER_KEY:
                        count = int(item["count"]["N"]) if "count" in item else 0
                    else:
                        states[by_key[key]] = _state_from_item(item)
                request = response.get("UnprocessedKeys") or None
        return states, count

    def _put(self, obs: StockObservation, old: PairState | None, new: PairState) -> Any:
        """The Put of ``new`` for ``obs``'s pair, conditioned on ``old`` being stored."""
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {
                "PK": {"S": _pair_key(obs.pair)},
                "event_time_us": {"N": str(new.event_time_us)},
                "event_id": {"S": new.event_id},
                "stock": {"N": str(new.stock)},
            },
        }
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            # Optimistic concurrency: commit only over the exact version we read.
            put["ConditionExpression"] = "event_time_us = :t AND event_id = :id"
            put["ExpressionAttributeValues"] = {
                ":t": {"N": str(old.event_time_us)},
                ":id": {"S": old.event_id},
            }
        return put

    def _commit(self, chunk: list[_Change]) -> bool:
        """One transaction for the chunk; False when a condition or a conflict cancelled it."""
        items: list[Any] = []
        delta = 0
        for obs, old, new, change in chunk:
            delta += change
            items.append({"Put": self._put(obs, old, new)})
        if delta:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"PK": {"S": COUNTER_KEY}},
                        "UpdateExpression": "ADD #c :d",
                        "ExpressionAttributeNames": {"#c": "count"},
                        "ExpressionAttributeValues": {":d": {"N": str(delta)}},
                    }
                }
            )
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as e:
            if error_code(e) == TRANSACTION_CANCELED:
                return False
            raise translate(
                e,
                f"transact write to {self.table_name}",
                service="dynamodb",
                resource=self.table_name,
            ) from e
        except BotoCoreError as e:
            raise translate(
                e,
                f"transact write to {self.table_name}",
                service="dynamodb",
                resource=self.table_name,
            ) from e
        return True


def _state_from_item(item: Mapping[str, Any]) -> PairState:
    return PairState(
        event_time_us=int(item["event_time_us"]["N"]),
        event_id=str(item["event_id"]["S"]),
        stock=int(item["stock"]["N"]),
    )
