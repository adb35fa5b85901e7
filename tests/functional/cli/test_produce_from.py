"""``fmcg produce --from FILE|-`` against the emulator's stream: the good lines land, per key in
order, and every bad line is reported with its number and reason.

A file through the real command tree (typer's CliRunner), and standard input through a real
process and a real pipe, as an export job would feed it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack

if TYPE_CHECKING:
    from pathlib import Path

REFUSED = 3
KEYS = ("SKU-1#LOC-1", "SKU-2#LOC-1", "SKU-3#LOC-2")


def event(i: int, tag: str = "ev") -> dict[str, Any]:
    """Event ``i`` of a test: its ``tag`` tells its events apart on the module's stream."""
    sku, location = KEYS[i % len(KEYS)].split("#")
    return {
        "event_id": f"{tag}-{i:03d}",
        "event_type": "sale",
        "sku_id": sku,
        "location_id": location,
        "quantity": 1 + i,
        "event_time": f"2026-01-01T10:{i % 60:02d}:00+00:00",
    }


def good(tag: str) -> list[dict[str, Any]]:
    return [event(i, tag) for i in range(40)]


#: Bad lines and where they go in the input (1-based line numbers of the whole input).
BAD = {
    3: (b"not json", "invalid_json", "Expecting value: line 1 column 1 (char 0)"),
    8: (b"[1, 2]", "not_an_object", "got JSON list"),
    15: (
        json.dumps({**event(99), "quantity": "many"}).encode(),
        "schema_violation",
        "quantity: data.quantity must be integer",
    ),
    22: (
        json.dumps({**event(98), "event_time": "2026-01-01 10:00"}).encode(),
        "invalid_event_time",
        "event_time: data.event_time must be date-time",
    ),
}
BLANK = {30}


def ndjson(events: list[dict[str, Any]]) -> bytes:
    """``events`` with the bad lines and blank lines at their numbers."""
    remaining = iter(events)
    lines: list[bytes] = []
    while len(lines) < len(events) + len(BAD) + len(BLANK):
        number = len(lines) + 1
        if number in BAD:
            lines.append(BAD[number][0])
        elif number in BLANK:
            lines.append(b"   ")
        else:
            lines.append(json.dumps(next(remaining)).encode())
    return b"\n".join(lines) + b"\n"


def on_stream(stack: LocalStack, tag: str) -> list[dict[str, Any]]:
    """The user records of one test on the sales stream, de-aggregated, shard after shard
    in order."""
    kinesis = stack.session().client("kinesis")
    stream = stack.ref("SalesStream")
    events = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            out = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for user in iter_deaggregate_records(out["Records"], data_format="Boto3"):
                data = user["kinesis"]["data"]
                plain = isinstance(data, bytes) and data.startswith(b"{")
                record = json.loads(data if plain else base64.b64decode(data))
                if record["event_id"].startswith(f"{tag}-"):
                    events.append(record)
            if not out["Records"]:
                break
            iterator = out["NextShardIterator"]
    return events


def per_key(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for e in events:
        grouped[f"{e['sku_id']}#{e['location_id']}"].append(e["event_id"])
    return dict(grouped)


def refused_lines_printed() -> list[str]:
    return [f"refused line {n}: {reason}: {detail}" for n, (_, reason, detail) in BAD.items()]


@pytest.fixture(scope="module")
def stack(emulator_url: str) -> LocalStack:
    """One stack for the module: each test tags its events (``event_id`` prefix)."""
    return LocalStack.create(emulator_url, stack_name=f"pf{uuid.uuid4().hex[:8]}")


@pytest.fixture
def home(tmp_path: Path, stack: LocalStack) -> Path:
    stack.save(tmp_path / "local.json")
    return tmp_path


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_given_a_file_of_good_and_bad_lines_when_produced_from_then_good_ones_land_in_key_order_and_bad_ones_are_reported(  # noqa: E501
    stack: LocalStack, home: Path, tmp_path: Path, aggregate: bool
) -> None:
    tag = f"file{int(aggregate)}"
    source = tmp_path / "export.ndjson"
    source.write_bytes(ndjson(good(tag)))
    rejects = tmp_path / "rejects.ndjson"
    args = ["produce", "--from", str(source), "--rejects", str(rejects)]

    result = CliRunner().invoke(
        app,
        [*args, *(["--aggregate"] if aggregate else [])],
        env={STATE_DIR_VARIABLE: str(home)},
        prog_name="fmcg",
    )

    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == REFUSED
    assert result.stderr.splitlines() == refused_lines_printed()
    stream = stack.ref("SalesStream")
    [summary] = result.stdout.splitlines()
    assert summary.startswith(f"produced 40 events from {source} to {stream} in ")
    assert summary.endswith(
        "; 4 lines refused: invalid_event_time 1, invalid_json 1, not_an_object 1, "
        "schema_violation 1"
    )
    assert ("(aggregated)" in summary) is aggregate
    received = on_stream(stack, tag)
    assert per_key(received) == per_key(good(tag))
    assert sorted(e["event_id"] for e in received) == [e["event_id"] for e in good(tag)]
    assert [json.loads(r) for r in rejects.read_text().splitlines()] == [
        {"line": n, "reason": reason, "detail": detail, "data": data.decode()}
        for n, (data, reason, detail) in BAD.items()
    ]


def test_given_lines_piped_to_standard_input_when_produced_from_dash_then_the_same(
    stack: LocalStack, home: Path
) -> None:
    env = {**os.environ, STATE_DIR_VARIABLE: str(home)}
    command = [sys.executable, "-m", "pipeline.cli.main", "produce", "--from", "-"]
    command += ["--show-refused", "2"]

    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        command, input=ndjson(good("pipe")), capture_output=True, env=env, timeout=120, check=False
    )

    assert done.returncode == REFUSED, done.stderr
    assert done.stderr.decode().splitlines() == [
        *refused_lines_printed()[:2],
        "2 more refused lines not shown (--rejects FILE keeps them all)",
    ]
    assert done.stdout.decode().startswith(
        f"produced 40 events from standard input to {stack.ref('SalesStream')} in "
    )
    assert per_key(on_stream(stack, "pipe")) == per_key(good("pipe"))


def test_given_only_good_lines_on_standard_input_then_status_0_and_nothing_on_stderr(
    stack: LocalStack, home: Path
) -> None:
    sent = good("clean")[:5]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in sent)

    result = CliRunner().invoke(
        app,
        ["produce", "--from", "-"],
        input=data,
        env={STATE_DIR_VARIABLE: str(home)},
        prog_name="fmcg",
    )

    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.endswith("; no line refused\n")
    assert sorted(e["event_id"] for e in on_stream(stack, "clean")) == [e["event_id"] for e in sent]


def test_given_a_file_that_does_not_exist_when_produced_from_then_one_line_and_status_1(
    home: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.ndjson"

    result = CliRunner().invoke(
        app,
        ["produce", "--from", str(missing)],
        env={STATE_DIR_VARIABLE: str(home)},
        prog_name="fmcg",
    )

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot read {missing}: No such file or directory\n"
