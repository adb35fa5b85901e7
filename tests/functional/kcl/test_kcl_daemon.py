"""The real MultiLangDaemon (Java, KCL 3) over the project's processor, against the emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipeline.local.kcl import LocalWorker, application_name, leader, leases, seed_leases
from tests.support.kcl_helpers import produce, raw_event_ids, sales_event, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.stack import LocalStack

pytestmark = pytest.mark.slow

#: Bounds on the waits (the daemon's empty-lease-table wait alone is up to 30 s).
START_TIMEOUT_S = 90.0


def dump_logs(*workers: LocalWorker) -> str:
    return "\n".join(
        w.log_path.read_text(errors="replace")[-3000:] for w in workers if w.log_path.exists()
    )


def test_given_events_on_the_stream_when_one_worker_runs_then_all_land_and_checkpoint_is_last(
    kcl_stack: LocalStack, tmp_path: Path
) -> None:
    session = kcl_stack.session()
    bucket = kcl_stack.ref("RawBucket")
    stream = kcl_stack.ref("SalesStream")
    last = produce(session, stream, range(40))
    expected = {sales_event(n)["event_id"] for n in range(40)}
    table = application_name(kcl_stack.stack_name)

    worker = LocalWorker(kcl_stack, tmp_path, "worker-a")
    try:
        worker.start()
        wait_for(
            lambda: set(raw_event_ids(session, bucket)) >= expected,
            START_TIMEOUT_S,
            "every event in the raw zone",
            alive=worker.running,
        )
        wait_for(
            lambda: {s: lease.checkpoint for s, lease in leases(session, table).items()} == last,
            30,
            "the checkpoints to reach the last sequence numbers",
            alive=worker.running,
        )
    except BaseException:
        print(dump_logs(worker))
        raise
    finally:
        worker.stop()
    assert set(raw_event_ids(session, bucket)) == expected
    assert {s: lease.checkpoint for s, lease in leases(session, table).items()} == last


def test_given_two_workers_when_one_is_killed_then_the_other_takes_its_lease_and_nothing_is_lost(
    kcl_stack: LocalStack, tmp_path: Path
) -> None:
    session = kcl_stack.session()
    bucket = kcl_stack.ref("RawBucket")
    stream = kcl_stack.ref("SalesStream")
    table = application_name(kcl_stack.stack_name)
    produce(session, stream, range(30))
    first = {sales_event(n)["event_id"] for n in range(30)}
    workers = {name: LocalWorker(kcl_stack, tmp_path, name) for name in ("worker-a", "worker-b")}
    try:
        # Leases written up front, as a previous worker's shard sync would have: neither
        # worker then waits out the daemon's random pause on an empty lease table.
        assert seed_leases(session, stream, table) == 2
        for w in workers.values():
            w.start()
        everyone_alive = lambda: all(w.running() for w in workers.values())  # noqa: E731
        wait_for(
            lambda: {lease.owner for lease in leases(session, table).values()} == set(workers),
            START_TIMEOUT_S,
            "each worker to own one of the two shards",
            alive=everyone_alive,
        )
        # Owning a lease is not consuming it yet: the shard consumer and its Python child
        # start after that, which under a loaded test run took more than 30 s.
        wait_for(
            lambda: set(raw_event_ids(session, bucket)) >= first,
            START_TIMEOUT_S,
            "the first events in the raw zone",
            alive=everyone_alive,
        )
        # Kill the worker that is not the leader: a dead leader's lock is held for two
        # minutes (fixed in KCL 3.1) before anyone reassigns leases.
        boss = leader(session, table)
        assert boss in workers
        survivor = workers[boss]
        victim = next(w for name, w in workers.items() if name != boss)
        victim.kill()
        last = produce(session, stream, range(30, 60))
        # Taking the lease over starts a shard consumer and its Python child for it: the
        # same start-up as above, which a loaded machine stretches past a minute.
        wait_for(
            lambda: all(
                lease.owner == boss and lease.checkpoint == last[shard]
                for shard, lease in leases(session, table).items()
            ),
            START_TIMEOUT_S + 60,
            "the surviving worker to take the lease and checkpoint both shards to the end",
            alive=survivor.running,
        )
    except BaseException:
        print(dump_logs(*workers.values()))
        raise
    finally:
        for w in workers.values():
            w.stop()
    ids = raw_event_ids(session, bucket)
    assert set(ids) == {sales_event(n)["event_id"] for n in range(60)}
    assert set(leases(session, table)) == set(last)
