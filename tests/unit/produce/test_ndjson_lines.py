"""NDJSON lines: validated one by one with the contract's reasons, then produced in batches."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from pipeline.produce import Producer, partition_key
from pipeline.produce.ndjson import (
    MAX_LINE_BYTES,
    Accepted,
    LinesNotDelivered,
    LinesReport,
    Refused,
    read_lines,
    send_lines,
)
from pipeline.produce.producer import ProducerRejected
from tests.support.fake_kinesis import FakeKinesis

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def no_sleep(_: float) -> None:
    return None


def stored(fake: FakeKinesis) -> list[dict[str, Any]]:
    """Every user record in the fake, de-aggregated, shard after shard in stream order."""
    out = []
    for records in fake.shards.values():
        boto = [
            {
                "Data": d,
                "PartitionKey": k,
                "SequenceNumber": str(i),
                "ApproximateArrivalTimestamp": 0,
            }
            for i, (k, d) in enumerate(records)
        ]
        for user in iter_deaggregate_records(boto, data_format="Boto3"):
            data = user["kinesis"]["data"]
            plain = isinstance(data, bytes) and data.startswith(b"{")
            out.append(json.loads(data if plain else base64.b64decode(data)))
    return out


def per_key(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for e in events:
        grouped[partition_key(e)].append(e["event_id"])
    return dict(grouped)


def event(i: int, *, key: int = 0, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_id": f"e-{i}",
        "event_type": "sale",
        "sku_id": f"SKU-{key}",
        "location_id": "LOC-1",
        "quantity": 1 + i,
        "event_time": "2026-01-01T10:00:00+00:00",
    }
    out.update(fields)
    return out


def line(i: int, **fields: Any) -> bytes:
    return json.dumps(event(i, **fields)).encode()


def read(data: bytes) -> list[Accepted | Refused]:
    return list(read_lines(io.BytesIO(data), now=NOW))


def refusals(data: bytes) -> list[tuple[int, str, str]]:
    return [(r.line, r.reason, r.detail) for r in read(data) if isinstance(r, Refused)]


GOOD = line(1)


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        (b"not json", "invalid_json", "Expecting value: line 1 column 1 (char 0)"),
        (b"{", "invalid_json", "Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"),
        (GOOD + b" x", "invalid_json", f"Extra data: line 1 column {len(GOOD) + 2} "
         f"(char {len(GOOD) + 1})"),
        (b"[1, 2]", "not_an_object", "got JSON list"),
        (b'"sale"', "not_an_object", "got JSON str"),
        (b"42", "not_an_object", "got JSON int"),
        (b"null", "not_an_object", "got JSON NoneType"),
        (b"{}", "schema_violation", "data: data must contain ['event_id', 'event_time', "
         "'event_type', 'location_id', 'quantity', 'sku_id'] properties"),
        (line(1, quantity="2"), "schema_violation", "quantity: data.quantity must be integer"),
        (line(1, event_type="gift"), "schema_violation",
         "event_type: data.event_type must be one of ['sale', 'return', 'stock_count']"),
        (line(1, event_type="stock_count"), "schema_violation",
         "data: data must contain ['stock_on_hand'] properties"),
        (line(1, event_time="2026-01-01T10:00:00"), "invalid_event_time",
         "event_time: data.event_time must be date-time"),
        (line(1, event_time="2999-01-01T00:00:00+00:00"), "event_time_out_of_range",
         "'2999-01-01T00:00:00+00:00' is outside the accepted range"),
        (b"\xff\xfe{}", "invalid_utf8",
         "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        (GOOD.replace(b'"quantity": 2', b'"quantity": NaN'), "invalid_json",
         "non-finite number NaN is not JSON"),
        (GOOD.replace(b'"quantity": 2', b'"quantity": 1e400'), "non_finite_number",
         "1e400 is beyond the range of a double"),
    ],
)  # fmt: skip
def test_given_a_bad_line_when_read_then_refused_with_its_number_and_exact_reason(
    text: bytes, reason: str, detail: str
) -> None:
    assert refusals(GOOD + b"\n" + text + b"\n" + GOOD + b"\n") == [(2, reason, detail)]


def test_given_good_bad_and_blank_lines_when_read_then_every_bad_one_is_reported_in_order() -> None:
    data = b"\n".join([line(1), b"", b"  \t ", b"oops", line(2), b"[]", line(3, quantity=-1)])

    items = read(data)

    assert [(type(i).__name__, i.line) for i in items] == [
        ("Accepted", 1),
        ("Refused", 4),
        ("Accepted", 5),
        ("Refused", 6),
        ("Refused", 7),
    ]
    assert [i.event for i in items if isinstance(i, Accepted)] == [event(1), event(2)]
    assert str(items[1]) == "line 4: invalid_json: Expecting value: line 1 column 1 (char 0)"
    assert items[1].data == b"oops"  # type: ignore[union-attr]


def test_given_crlf_line_ends_a_bom_and_no_final_newline_when_read_then_all_accepted() -> None:
    data = b"\xef\xbb\xbf" + line(1) + b"\r\n" + line(2) + b"\r\n" + line(3)

    items = read(data)

    assert [(type(i).__name__, i.line) for i in items] == [("Accepted", n) for n in (1, 2, 3)]


def test_given_a_bom_after_the_first_line_when_read_then_that_line_is_refused() -> None:
    assert refusals(line(1) + b"\n\xef\xbb\xbf" + line(2)) == [
        (2, "invalid_json", "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 "
         "(char 0)")
    ]  # fmt: skip


class _Watched(io.BytesIO):
    """A stream that remembers the most bytes one read returned."""

    largest = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        out = super().readline(size)
        self.largest = max(self.largest, len(out))
        return out


def test_given_a_line_over_1_mib_when_read_then_refused_without_reading_it_whole() -> None:
    length = 3 * MAX_LINE_BYTES
    stream = _Watched(line(1) + b"\n" + b"x" * length + b"\r\n" + line(3) + b"\n")

    items = list(read_lines(stream, now=NOW))

    assert [(type(i).__name__, i.line) for i in items] == [
        ("Accepted", 1),
        ("Refused", 2),
        ("Accepted", 3),
    ]
    assert (items[1].reason, items[1].detail, items[1].data) == (  # type: ignore[union-attr]
        "record_too_large",
        f"line of {length} bytes > {MAX_LINE_BYTES}",
        None,
    )
    assert stream.largest == MAX_LINE_BYTES + 1


def test_given_a_line_whose_record_would_be_over_1_mib_when_read_then_refused() -> None:
    # "1E5" is re-encoded as "100000.0": the line fits 1 MiB, the record would not.
    big = line(1, note=["__"]).replace(b'"__"', b",".join([b"1E5"] * 200_000))
    assert len(big) < MAX_LINE_BYTES

    [refused] = read(big)

    assert isinstance(refused, Refused)
    assert (refused.line, refused.reason) == (1, "record_too_large")
    assert refused.detail.endswith(" bytes with its partition key > 1048576")


def test_given_an_accepted_line_then_its_event_keeps_unknown_fields_and_its_size() -> None:
    [accepted] = read(line(1, store_note="ok"))

    assert isinstance(accepted, Accepted)
    assert accepted.event == event(1, store_note="ok")
    record = json.dumps(accepted.event, separators=(",", ":")).encode()
    assert accepted.size == len(record) + len(partition_key(accepted.event))


# ------------------------------------------------------------------------- send_lines


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.mark.parametrize("aggregate", [False, True])
def test_given_good_and_bad_lines_when_sent_then_good_ones_in_key_order_and_bad_ones_reported(
    aggregate: bool,
) -> None:
    good = [event(i, key=i % 3) for i in range(30)]
    lines = ndjson(good).splitlines(keepends=True)
    lines.insert(4, b"oops\n")
    lines.insert(10, b"\n")
    lines.insert(20, b"[]\n")
    fake = FakeKinesis()
    refused: list[Refused] = []
    batches: list[int] = []

    report = send_lines(
        io.BytesIO(b"".join(lines)),
        Producer(fake, "s", aggregate=aggregate, sleep=no_sleep),  # type: ignore[arg-type]
        on_refused=refused.append,
        on_batch=lambda r: batches.append(r.produced.events),
        max_events=7,
        now=NOW,
    )

    on_stream = stored(fake)
    assert per_key(on_stream) == per_key(good)
    assert sorted(e["event_id"] for e in on_stream) == sorted(e["event_id"] for e in good)
    assert [(r.line, r.reason) for r in refused] == [(5, "invalid_json"), (21, "not_an_object")]
    assert (report.accepted, report.refused_lines, dict(report.refused)) == (
        30,
        2,
        {"invalid_json": 1, "not_an_object": 1},
    )
    assert report.produced.events == 30
    assert batches == [7, 14, 21, 28, 30]
    assert report.delivered_through == report.last_line == 33


def test_given_a_batch_over_max_bytes_when_sent_then_it_goes_before_max_events() -> None:
    good = [event(i, key=i) for i in range(10)]
    fake = FakeKinesis()
    size = len(json.dumps(good[0], separators=(",", ":"))) + len(partition_key(good[0]))

    send_lines(
        io.BytesIO(ndjson(good)),
        Producer(fake, "s", sleep=no_sleep),  # type: ignore[arg-type]
        max_bytes=3 * size,
        now=NOW,
    )

    assert [len(call) for call in fake.calls] == [3, 3, 3, 1]


def test_given_a_slow_pipe_when_sent_then_a_batch_goes_after_the_linger_not_at_the_end() -> None:
    read_fd, write_fd = os.pipe()
    delivered = threading.Event()
    fake = FakeKinesis()

    def writer() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:
            pipe.write(ndjson([event(1), event(2)]))
            delivered.wait(timeout=10)
            pipe.write(ndjson([event(3)]))

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb") as stream:
        report = send_lines(
            stream,
            Producer(fake, "s", sleep=no_sleep),  # type: ignore[arg-type]
            on_batch=lambda _: delivered.set(),
            linger_s=0.05,
            now=NOW,
        )
    thread.join()

    # The writer waited for the first batch before writing its last line and closing.
    assert [len(call) for call in fake.calls] == [1, 1, 1]
    assert report.produced.events == 3


def test_given_the_stream_failing_on_a_later_batch_then_the_error_says_where_to_resume() -> None:
    def refuse_e7(_call: int, record: dict[str, Any]) -> str | None:
        return "AccessDeniedException" if json.loads(record["Data"])["event_id"] == "e-7" else None

    fake = FakeKinesis(fail=refuse_e7)
    data = b"oops\n" + ndjson([event(i, key=i % 2) for i in range(10)])

    with pytest.raises(LinesNotDelivered) as caught:
        send_lines(
            io.BytesIO(data),
            Producer(fake, "s", sleep=no_sleep),  # type: ignore[arg-type]
            max_events=4,
            now=NOW,
        )

    # Lines 2-5 (e-0..e-3) are delivered; e-7 fails the batch of lines 6-9.
    assert isinstance(caught.value.error, ProducerRejected)
    report: LinesReport = caught.value.report
    assert (report.delivered_through, report.produced.events) == (5, 4)
    assert str(caught.value).endswith(
        "; every accepted line before line 6 is on the stream (4 events): send again from "
        "line 6 (compaction drops events whose event_id it already has)"
    )


class _Broken(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, _buffer: Any) -> int:
        time.sleep(0.01)
        raise OSError(5, "Input/output error")


def test_given_an_input_that_fails_to_read_then_the_os_error_reaches_the_caller() -> None:
    with pytest.raises(OSError, match="Input/output error"):
        send_lines(
            io.BufferedReader(_Broken()),
            Producer(FakeKinesis(), "s", sleep=no_sleep),  # type: ignore[arg-type]
        )


class _Interrupted(io.BytesIO):
    """Three lines, then Ctrl-C."""

    def readline(self, size: int | None = -1, /) -> bytes:
        out = super().readline(size)
        if not out:
            raise KeyboardInterrupt
        return out


def test_given_ctrl_c_while_reading_then_the_error_says_where_to_resume() -> None:
    fake = FakeKinesis()

    with pytest.raises(LinesNotDelivered) as caught:
        send_lines(
            _Interrupted(ndjson([event(1), event(2), event(3)])),
            Producer(fake, "s", sleep=no_sleep),  # type: ignore[arg-type]
            max_events=2,
            now=NOW,
        )

    assert str(caught.value).startswith(
        "interrupted; every accepted line before line 3 is on the stream (2 events): "
        "send again from line 3"
    )
    assert [e["event_id"] for e in stored(fake)] == ["e-1", "e-2"]


def test_given_refused_lines_before_a_failed_batch_then_the_resume_line_skips_them() -> None:
    def refuse_e3(_call: int, record: dict[str, Any]) -> str | None:
        return "AccessDeniedException" if json.loads(record["Data"])["event_id"] == "e-3" else None

    data = ndjson([event(1), event(2)]) + b"oops\n[]\n" + ndjson([event(3)])

    with pytest.raises(LinesNotDelivered) as caught:
        send_lines(
            io.BytesIO(data),
            Producer(FakeKinesis(fail=refuse_e3), "s", sleep=no_sleep),  # type: ignore[arg-type]
            max_events=2,
            now=NOW,
        )

    assert caught.value.report.delivered_through == 4
    assert "send again from line 5 " in str(caught.value)
