"""The compaction manifest stays bounded by the open window, whatever the lake's age."""

from __future__ import annotations

from datetime import date, timedelta

from pipeline.compaction.state import (
    Manifest,
    Pending,
    advance,
    arrival_day,
    find_new,
    list_after,
)
from pipeline.compaction.store import ObjectInfo

D0 = date(2026, 1, 1)


def key(day: date, n: int, shard: str = "shardId-000000000000") -> str:
    return f"sales/{day:%Y/%m/%d}/{shard}-{n:056d}-{n:056d}.json"


class FakeStore:
    """``LakeStore.list`` over a dict, counting what each LIST returned."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.listed: list[int] = []

    def put(self, k: str, etag: str = "e1") -> None:
        self.objects[k] = etag

    def list(self, bucket: str, prefix: str, start_after: str = "") -> list[ObjectInfo]:
        found = [
            ObjectInfo(k, e, 10)
            for k, e in sorted(self.objects.items())
            if k.startswith(prefix) and k > start_after
        ]
        self.listed.append(len(found))
        return found


def run(store: FakeStore, manifest: Manifest, max_objects: int = 1000, open_days: int = 8):
    pending = find_new(store, "raw", manifest, max_objects=max_objects)  # type: ignore[arg-type]
    advance(manifest, pending, open_days=open_days)
    return pending


def test_given_raw_keys_then_the_arrival_day_is_read_from_the_layout() -> None:
    assert arrival_day(key(D0, 1)) == D0
    assert arrival_day("sales/2026/13/01/x.json") is None
    assert arrival_day("quarantine/2026/01/01/x.json") is None


def test_given_a_watermark_then_the_listing_starts_after_every_key_of_its_day() -> None:
    manifest = Manifest(watermark=D0)
    after = list_after(manifest)

    assert key(D0, 99_999) < after < key(D0 + timedelta(days=1), 0)
    assert list_after(Manifest()) == ""


def test_given_sixty_days_of_arrivals_then_the_manifest_holds_only_the_open_window() -> None:
    store, manifest = FakeStore(), Manifest()
    for day in range(60):
        for n in range(10):
            store.put(key(D0 + timedelta(days=day), n))
        run(store, manifest)

    # Eight open days after the newest (day 59): days 52..59 hold entries.
    assert sorted(manifest.days) == [D0 + timedelta(days=d) for d in range(52, 60)]
    assert manifest.entries == 80
    assert manifest.watermark == D0 + timedelta(days=51)
    # The last run listed the open window and the day it closed (51..59), not the lake's 600.
    assert store.listed[-1] == 9 * 10


def test_given_a_closed_day_when_listed_again_then_nothing_is_new() -> None:
    store, manifest = FakeStore(), Manifest()
    store.put(key(D0, 1))
    store.put(key(D0 + timedelta(days=20), 1))
    run(store, manifest)

    again = run(store, manifest)

    assert manifest.watermark == D0 + timedelta(days=12)
    assert again.objects == []
    assert not manifest.is_new(ObjectInfo(key(D0, 1), "other", 10))


def test_given_an_overwritten_object_in_an_open_day_then_it_is_new_again() -> None:
    store, manifest = FakeStore(), Manifest()
    store.put(key(D0, 1), "e1")
    run(store, manifest)
    store.put(key(D0, 1), "e2")

    pending = run(store, manifest)

    assert [(o.key, o.etag) for o in pending.objects] == [(key(D0, 1), "e2")]


def test_given_a_late_batch_under_an_open_day_then_it_is_found() -> None:
    store, manifest = FakeStore(), Manifest()
    for day in range(10):
        store.put(key(D0 + timedelta(days=day), 1))
    run(store, manifest)
    # A retried batch of day 5 after an outage: day 5 is still within 8 days of day 9.
    store.put(key(D0 + timedelta(days=5), 7, shard="shardId-000000000001"))

    pending = run(store, manifest)

    assert [o.key for o in pending.objects] == [
        key(D0 + timedelta(days=5), 7, "shardId-000000000001")
    ]


def test_given_a_backlog_when_runs_are_bounded_then_it_drains_oldest_first_without_loss() -> None:
    store, manifest = FakeStore(), Manifest()
    everything = [key(D0 + timedelta(days=d), n) for d in range(20) for n in range(5)]
    for k in everything:
        store.put(k)
    taken: list[str] = []
    runs = 0
    while pending := run(store, manifest, max_objects=7).objects:
        runs += 1
        taken += [o.key for o in pending]
        assert taken == sorted(taken)

    assert runs == 15  # ceil(100 / 7)
    assert taken == sorted(everything)


def test_given_objects_waiting_in_a_closed_day_then_the_watermark_waits_for_them() -> None:
    store, manifest = FakeStore(), Manifest()
    for n in range(3):
        store.put(key(D0, n))
    store.put(key(D0 + timedelta(days=30), 0))

    first = run(store, manifest, max_objects=2)

    assert first.left == 2
    assert first.waiting == frozenset({D0, D0 + timedelta(days=30)})
    assert manifest.watermark == D0 - timedelta(days=1)
    second = run(store, manifest, max_objects=2)
    assert [o.key for o in second.objects] == [key(D0, 2), key(D0 + timedelta(days=30), 0)]
    assert manifest.watermark == D0 + timedelta(days=22)
    assert manifest.days == {D0 + timedelta(days=30): {key(D0 + timedelta(days=30), 0): "e1"}}


def test_given_the_earlier_unbounded_manifest_then_it_migrates_and_prunes_on_the_next_run() -> None:
    old = (
        b'{"version":1,"max_event_date":"2026-01-20","compacted_at":null,"objects":{'
        + b",".join(f'"{key(D0 + timedelta(days=d), 0)}":"e1"'.encode() for d in range(20))
        + b"}}"
    )
    manifest = Manifest.from_json(old)
    store = FakeStore()
    for d in range(20):
        store.put(key(D0 + timedelta(days=d), 0))

    pending = run(store, manifest)

    assert pending.objects == []
    assert manifest.max_event_date == date(2026, 1, 20)
    # Nothing new: the first run only establishes nothing; the watermark comes with work.
    store.put(key(D0 + timedelta(days=20), 0))
    assert [o.key for o in run(store, manifest).objects] == [key(D0 + timedelta(days=20), 0)]
    assert manifest.watermark == D0 + timedelta(days=12)
    assert manifest.entries == 8


def test_given_a_manifest_then_it_round_trips_through_json() -> None:
    manifest = Manifest({D0: {key(D0, 1): "e1"}}, D0 - timedelta(days=1), D0, "2026-01-02T00:00")

    assert Manifest.from_json(manifest.to_json()) == manifest


def test_given_no_new_object_then_advance_keeps_the_manifest() -> None:
    manifest = Manifest({D0: {key(D0, 1): "e1"}}, D0 - timedelta(days=1))

    advance(manifest, Pending([]), open_days=8)

    assert manifest == Manifest({D0: {key(D0, 1): "e1"}}, D0 - timedelta(days=1))
