"""Forecast items for DynamoDB, and a parallel BatchWriteItem writer that loses nothing.

Item shape (the seed's contract): ``PK = "SKU#<sku>"``, ``SK = "LOC#<loc>#DATE#<yyyy-mm-dd>"``,
``DateSK = "DATE#<yyyy-mm-dd>#LOC#<loc>"`` (the ``ByDate`` index, which the API reads a
SKU's every location by date from), ``forecast_val``, ``confidence_lower``,
``confidence_upper`` (the 80 % interval), ``lower_95``, ``upper_95`` (numbers), ``ttl``
(epoch seconds, now + 90 days), ``run_id`` (the job run that wrote it, the same on every
item of a run) and ``generated_at`` (when that run ran, ISO-8601 UTC). Writes are
puts keyed by PK/SK, so a retried or repeated write of the same forecast replaces the
item with an identical one: idempotent.
"""

from __future__ import annotations

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import (
    CONDITIONAL_CHECK_FAILED,
    THROTTLING_CODES,
    AwsTransientError,
    Backoff,
    error_code,
    translate,
)
from pipeline.aws_errors import client as aws_client
from pipeline.errors import TerminalError, TransientError
from pipeline.lake import DATE_SORT_KEY, forecast_date_sort_key, forecast_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import boto3

TTL_DAYS = 90
BATCH_SIZE = 25  # BatchWriteItem's limit per request
#: Batches in flight. On the emulator throughput is flat from 4 to 16 (one process serves
#: every request under one GIL: benchmarks/dynamodb_writes.py --sweep); against DynamoDB
#: each batch is a network round trip, so more in flight do help there.
WORKERS = 8

Item = dict[str, Any]


@dataclass(frozen=True)
class ForecastRow:
    """One day's forecast of one SKU at one location: the 80 % interval's bounds, and the
    95 % interval's where the forecaster made one."""

    sku_id: str
    location_id: str
    day: date
    forecast_val: float
    confidence_lower: float
    confidence_upper: float
    lower_95: float | None = None
    upper_95: float | None = None


def _number(value: float) -> Decimal:
    # DynamoDB numbers are decimals; 4 places is finer than any unit count needs.
    return Decimal(str(round(float(value), 4)))


class NonFiniteForecast(TerminalError):
    """A forecast number that DynamoDB cannot store (NaN or infinite): a forecaster bug,
    refused before the write so the message names the series instead of a field."""


def new_run_id() -> str:
    """A run id for a run that was given none (a Glue run passes its ``JOB_RUN_ID``)."""
    return uuid.uuid4().hex


def utc_timestamp(moment: datetime) -> str:
    """``moment`` as ISO-8601 in UTC (``2024-07-01T06:00:00+00:00``); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def forecast_item(
    row: ForecastRow, *, now: datetime, run_id: str, expires_from: datetime | None = None
) -> Item:
    """The DynamoDB item (Python types, Decimal numbers) of one forecast row, written by
    the run ``run_id`` at ``now``; it expires 90 days after ``expires_from`` (default
    ``now``: a published backfill's ``now`` is in the past, see :func:`publish_backfill`)."""
    numbers = {
        "forecast_val": row.forecast_val,
        "confidence_lower": row.confidence_lower,
        "confidence_upper": row.confidence_upper,
    }
    if row.lower_95 is not None and row.upper_95 is not None:
        numbers |= {"lower_95": row.lower_95, "upper_95": row.upper_95}
    bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
    if bad:
        fields = ", ".join(f"{name}={value}" for name, value in bad.items())
        raise NonFiniteForecast(
            f"forecast of sku_id={row.sku_id} location_id={row.location_id} "
            f"for {row.day.isoformat()} is not finite: {fields}"
        )
    pk, sk = forecast_keys(row.sku_id, row.location_id, row.day)
    return {
        "PK": pk,
        "SK": sk,
        DATE_SORT_KEY: forecast_date_sort_key(row.location_id, row.day),
        **{name: _number(value) for name, value in numbers.items()},
        "ttl": ttl_epoch(expires_from or now),
        "run_id": run_id,
        "generated_at": utc_timestamp(now),
    }


def ttl_epoch(now: datetime) -> int:
    """``now + 90 days`` as epoch seconds (DynamoDB TTL)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int((now + timedelta(days=TTL_DAYS)).timestamp())


_SERIALIZER = TypeSerializer()


def attribute_value(value: Any) -> dict[str, Any]:
    """The low-level ``AttributeValue`` of a Python value, as boto3's TypeSerializer gives.

    Strings and numbers (all a forecast item holds) take a direct path: TypeSerializer's
    chain of type checks took 3x as long (37 vs 11 us per forecast item)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        number = str(DYNAMODB_CONTEXT.create_decimal(value))  # raises where DynamoDB would
        if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
            raise TerminalError(f"DynamoDB cannot store the number {number}")
        return {"N": number}
    return cast("dict[str, Any]", _SERIALIZER.serialize(value))  # rejects floats, as boto3 does


def put_request(item: Item) -> dict[str, Any]:
    """A ``PutRequest`` of BatchWriteItem for one item."""
    return {"PutRequest": {"Item": {k: attribute_value(v) for k, v in item.items()}}}


def _batches(items: Iterable[Item]) -> list[list[Item]]:
    # BatchWriteItem rejects two requests for one key in a batch: the last write wins.
    unique = {(item["PK"], item["SK"]): item for item in items}
    values = list(unique.values())
    return [values[i : i + BATCH_SIZE] for i in range(0, len(values), BATCH_SIZE)]


class BatchWriter:
    """Writes items through BatchWriteItem from a thread pool, retrying what DynamoDB did
    not process (``UnprocessedItems``) and transient errors (throttling, 5xx, timeouts: the
    rule of :mod:`pipeline.aws_errors`) with jittered exponential backoff until every item
    is written or ``max_attempts`` is spent (TransientError); a terminal error stops at once.

    The jitter is ``"equal"`` (a wait in ``[d/2, d]``): the workers of one writer share a
    table's throughput, and a wait near zero after a throttle would mostly be throttled
    again."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb_client: Any = None,
        session: boto3.session.Session | None = None,
        workers: int = WORKERS,
        max_attempts: int = 12,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self.workers = workers
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._backoff = Backoff(base_s=base_delay, cap_s=max_delay, jitter="equal", sleep=sleep)
        self._client = dynamodb_client
        self._session = session

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            session = self._session or boto3.session.Session()
            # One pooled connection per worker, so no request waits for (or reopens) one.
            # Parameter validation walks every attribute of every item and was a third of
            # the client's time; the items are built here, and DynamoDB validates them anyway
            # (a ValidationException is terminal).
            self._client = aws_client(
                session,
                "dynamodb",
                max_pool_connections=self.workers,
                parameter_validation=False,
            )
        return self._client

    def _write_batch(self, batch: Sequence[Item]) -> int:
        requests = [put_request(item) for item in batch]
        dynamodb = self.client
        action = f"BatchWriteItem on {self.table_name}"
        for attempt in range(self.max_attempts):
            try:
                response = dynamodb.batch_write_item(RequestItems={self.table_name: requests})
            except (ClientError, BotoCoreError) as e:
                # A throttle, a 5xx or a timeout that outlasted botocore's retries: the puts
                # are idempotent (same keys), so resending the batch is safe.
                error = translate(e, action, service="dynamodb", resource=self.table_name)
                if not isinstance(error, AwsTransientError):
                    raise error from e
                if attempt == self.max_attempts - 1:
                    if error.code in THROTTLING_CODES:
                        raise error.retitled(f"BatchWriteItem throttled: {error.code}") from e
                    raise error from e
                self._backoff.wait(attempt + 1)
                continue
            requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not requests:
                return len(batch)
            self._backoff.wait(attempt + 1)
        raise TransientError(
            f"{len(requests)} items still unprocessed after {self.max_attempts} attempts"
        )

    def write(
        self, items: Iterable[Item], progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Write every item (duplicates by key collapse to one); returns the count written.

        ``progress(done, total)`` is called after each batch."""
        batches = _batches(items)
        total = sum(len(b) for b in batches)
        done = 0
        _ = self.client  # built here, once: creating clients from one session is not thread-safe
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for written in pool.map(self._write_batch, batches):
                done += written
                if progress is not None:
                    progress(done, total)
        return done


def write_forecasts(
    rows: Iterable[ForecastRow],
    *,
    table_name: str,
    now: datetime,
    run_id: str,
    dynamodb_client: Any = None,
    session: boto3.session.Session | None = None,
    workers: int = WORKERS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write forecast rows as items of the run ``run_id`` at ``now`` (``ttl = now + 90
    days``); returns the items written."""
    writer = BatchWriter(
        table_name, dynamodb_client=dynamodb_client, session=session, workers=workers
    )
    items = (forecast_item(row, now=now, run_id=run_id) for row in rows)
    return writer.write(items, progress=progress)


#: A backfill's item replaces an item only if that one was made for an earlier moment.
NOT_NEWER = "attribute_not_exists(PK) OR generated_at <= :generated_at"


def publish_backfill(
    rows: Iterable[ForecastRow],
    *,
    table_name: str,
    now: datetime,
    run_id: str,
    dynamodb_client: Any = None,
    session: boto3.session.Session | None = None,
    workers: int = WORKERS,
    progress: Callable[[int, int], None] | None = None,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_attempts: int = 12,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """Write a backfill's forecast rows (made as of ``now``, in the past) as items, except
    where the table holds a forecast made for a later moment; ``(written, kept)``, ``kept``
    the items left alone because a newer forecast of that SKU, location and day is there.

    Each item is a conditional PutItem (``generated_at`` of the item there, ISO-8601 UTC
    strings, compare in time order): BatchWriteItem takes no condition, and a read before
    the write would race a scheduled run writing a newer forecast meanwhile. Re-running the
    same backfill replaces its own items (same ``generated_at``).

    The TTL counts from the wall clock, not from ``now``: a backfill of 2016 with
    ``ttl = now + 90 days`` would carry an expiry years past, and DynamoDB's TTL deletes
    expired items within days of the write, so the published forecasts would vanish soon
    after they were published. Counted from the day they are published, they stay readable
    for the 90 days a regular run's items do."""
    expires_from = wall_clock()
    generated_at = utc_timestamp(now)
    items = list(
        {
            (item["PK"], item["SK"]): item
            for item in (
                forecast_item(row, now=now, run_id=run_id, expires_from=expires_from)
                for row in rows
            )
        }.values()
    )
    writer = BatchWriter(
        table_name,
        dynamodb_client=dynamodb_client,
        session=session,
        workers=workers,
        max_attempts=max_attempts,
        sleep=sleep,
    )
    dynamodb = writer.client
    condition_values = {":generated_at": {"S": generated_at}}
    action = f"PutItem on {table_name}"

    def put(item: Item) -> bool:
        request = {k: attribute_value(v) for k, v in item.items()}
        for attempt in range(max_attempts):
            try:
                dynamodb.put_item(
                    TableName=table_name,
                    Item=request,
                    ConditionExpression=NOT_NEWER,
                    ExpressionAttributeValues=condition_values,
                )
            except (ClientError, BotoCoreError) as e:
                if error_code(e) == CONDITIONAL_CHECK_FAILED:
                    return False  # a newer forecast is there: it stays
                error = translate(e, action, service="dynamodb", resource=table_name)
                if not isinstance(error, AwsTransientError) or attempt == max_attempts - 1:
                    raise error from e
                writer._backoff.wait(attempt + 1)  # noqa: SLF001 - the writer's own policy
                continue
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    written = kept = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, put_ok in enumerate(pool.map(put, items), start=1):
            written += put_ok
            kept += not put_ok
            if progress is not None and (done % 500 == 0 or done == len(items)):
                progress(done, len(items))
    return written, kept
