"""Maintenance against the emulator: a day's small files packed into one with the same rows,
old snapshots expired, one commit each; the work bounded by the look-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pyiceberg.table import Transaction

from pipeline.compaction import run_compaction
from pipeline.errors import TransientError
from pipeline.lake.maintenance import maintain
from pipeline.lake.tables import SALES, iceberg_catalog, load_table
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, snapshot_files, table_rows

if TYPE_CHECKING:
    import boto3

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
LATER = T0 + timedelta(days=5)


def _three_runs_into_one_day(lake: Lake, session: boto3.session.Session) -> None:
    s3 = session.client("s3")
    for n in range(3):
        at = T0 + timedelta(hours=n)
        put_raw(s3, lake.raw, raw_key(at, "shardId-000000000000", n, n), [event(f"e{n}", at)])
        run_compaction(
            raw_bucket=lake.raw,
            curated_bucket=lake.curated,
            database=lake.database,
            session=session,
        )


def test_given_a_day_of_three_small_files_when_maintained_then_one_file_same_rows(
    lake: Lake, session: boto3.session.Session
) -> None:
    _three_runs_into_one_day(lake, session)
    before = table_rows(session, lake.database, "sales")
    files_before = snapshot_files(session, lake.database, "sales")

    report = maintain(session, database=lake.database, now=LATER, retention_days=10_000)

    after = table_rows(session, lake.database, "sales")
    files_after = snapshot_files(session, lake.database, "sales")
    assert len(files_before) == 3
    assert len(files_after) == 1
    assert files_after[0][1] == ("2024", "03", "01")
    assert sorted(after, key=lambda r: r["event_id"]) == sorted(before, key=lambda r: r["event_id"])
    # sales packed; daily_demand's day was replaced by each run, so it is one file already.
    assert (report.days_packed, report.files_replaced, report.snapshots_expired) == (1, 3, 0)


def test_given_old_snapshots_when_maintained_then_only_the_current_one_is_kept(
    lake: Lake, session: boto3.session.Session
) -> None:
    _three_runs_into_one_day(lake, session)
    table = load_table(iceberg_catalog(session), lake.database, SALES)
    assert table is not None and len(table.snapshots()) == 3

    # Snapshots are stamped with the commit's wall clock: a retention of 0 days at a
    # moment after them all expires every one but the current.
    report = maintain(
        session,
        database=lake.database,
        now=datetime.now(UTC) + timedelta(seconds=1),
        retention_days=0,
        lookback_days=1,
    )

    table = load_table(iceberg_catalog(session), lake.database, SALES)
    assert table is not None
    assert [s.snapshot_id for s in table.snapshots()] == [table.current_snapshot().snapshot_id]
    assert report.days_packed == 0  # 2024-03-01 is outside a one-day look-back from now
    assert sorted(r["event_id"] for r in table_rows(session, lake.database, "sales")) == [
        "e0",
        "e1",
        "e2",
    ]


def test_given_a_packed_day_when_maintained_again_then_nothing_to_do(
    lake: Lake, session: boto3.session.Session
) -> None:
    _three_runs_into_one_day(lake, session)
    maintain(session, database=lake.database, now=LATER, retention_days=10_000)

    again = maintain(session, database=lake.database, now=LATER, retention_days=10_000)

    assert (again.days_packed, again.files_replaced) == (0, 0)


def test_given_compaction_commits_while_a_day_is_packed_then_the_pack_retries_and_keeps_all(
    lake: Lake, session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a day of three files, and a compaction run that commits a fourth event to it
    # after maintenance read the day and before maintenance commits
    _three_runs_into_one_day(lake, session)
    at = T0 + timedelta(hours=5)
    put_raw(session.client("s3"), lake.raw, raw_key(at, "shardId-000000000001", 9, 9),
            [event("racer", at)])  # fmt: skip
    original = Transaction.commit_transaction
    raced: list[str] = []

    def commit_after_the_racer(self: Transaction) -> Any:
        if not raced:
            raced.append("compaction")
            run_compaction(raw_bucket=lake.raw, curated_bucket=lake.curated,
                           database=lake.database, session=session)  # fmt: skip
        return original(self)

    monkeypatch.setattr(Transaction, "commit_transaction", commit_after_the_racer)

    # WHEN maintenance packs the day: its commit loses the race
    with pytest.raises(TransientError, match="another commit came first"):
        maintain(session, database=lake.database, now=LATER, retention_days=10_000)
    monkeypatch.setattr(Transaction, "commit_transaction", original)
    retried = maintain(session, database=lake.database, now=LATER, retention_days=10_000)

    # THEN the retried pack keeps every row, the racer's too, in one file
    ids = sorted(r["event_id"] for r in table_rows(session, lake.database, "sales"))
    assert ids == ["e0", "e1", "e2", "racer"]
    assert retried.days_packed >= 1
    assert len(snapshot_files(session, lake.database, "sales")) == 1
