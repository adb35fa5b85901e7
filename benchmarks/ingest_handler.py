"""Ingest handler throughput and import time.

Throughput: the handler's work on one 10,000-record Kinesis batch (event parsing, base64,
de-aggregation check, validation, NDJSON, metrics), on one core with an in-memory store so
it measures CPU, as a ratio to a bare Powertools BatchProcessor + json.loads loop over the
same event in the same run (goal >= 0.7). Import time: a fresh interpreter importing the
handler module (goal <= 300 ms, without pandas/pyarrow).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import Figure, add_arguments, write_json
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from pipeline.contracts import parse_event
from pipeline.ingest import InMemoryInventory, InMemoryRawStore, from_lambda_event
from pipeline.local.invoke import import_handler_module
from tests.support.kinesis_events import KinesisPut, kinesis_lambda_event, sequence_number

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
        KinesisStreamRecord,
    )

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "stream_consumers" / "ingest_stream" / "app.py"
RECORDS = 10_000
REPEATS = 5


def batch() -> dict[str, Any]:
    now = time.time()
    puts = []
    for i in range(RECORDS):
        event = {
            "event_id": f"evt-{i:08d}",
            "event_type": "sale",
            "sku_id": f"SKU-{i % 500:05d}",
            "location_id": f"STORE-{i % 40:03d}",
            "quantity": 1 + i % 4,
            "stock_on_hand": i % 25,
            "unit_price": 3.99,
            "event_time": "2025-03-01T09:15:00.123+00:00",
        }
        data = json.dumps(event).encode()
        puts.append(
            KinesisPut(
                data, f"{event['sku_id']}#{event['location_id']}", sequence_number(i), now - 1.0
            )
        )
    return kinesis_lambda_event(puts)


def load_handler() -> Any:
    os.environ.setdefault("RAW_BUCKET", "bench-raw")
    return import_handler_module(HANDLER, "ingest_app_bench")


def best_of_each(*fns: Any) -> list[float]:
    """The best time of each of ``fns`` over REPEATS rounds that run each once, in turn.

    Interleaved rather than one function's repeats after the other's: on a shared machine
    a burst of load then slows every function of a ratio alike instead of only one side.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(REPEATS):
        for fn, fn_times in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - started)
    return [min(fn_times) for fn_times in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()  # --quick: this one is already short (seconds)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    event = batch()
    app = load_handler()
    store, inventory = InMemoryRawStore(), InMemoryInventory()
    app._adapters = lambda: (store, inventory)
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

    def bare_record_handler(record: KinesisStreamRecord) -> Any:
        return json.loads(record.kinesis.data_as_text())

    def baseline() -> None:
        process_partial_response(
            event=event, record_handler=bare_record_handler, processor=processor, context=None
        )

    def handler() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            assert app.lambda_handler(event, None) == {"batchItemFailures": []}

    records = from_lambda_event(event)

    def contract_only() -> None:
        for record in records:
            parse_event(record.data)

    baseline_s, handler_s, contract_s = best_of_each(baseline, handler, contract_only)
    raw = next(v for k, v in store.objects.items() if k.startswith("sales/"))
    assert raw.count(b"\n") == RECORDS

    imports = []
    for _ in range(REPEATS):
        probe = (
            "import time, importlib.util, sys; t = time.perf_counter(); "
            f"s = importlib.util.spec_from_file_location('app', {str(HANDLER)!r}); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "print(time.perf_counter() - t, 'pandas' in sys.modules or 'pyarrow' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "RAW_BUCKET": "bench-raw"},
        ).stdout
        seconds, heavy = out.split()
        imports.append(float(seconds))

    print(f"records per batch          {RECORDS}")
    print(f"baseline (BatchProcessor + json.loads)  {RECORDS / baseline_s:>10,.0f} events/s")
    print(f"ingest handler (validate, NDJSON, EMF)  {RECORDS / handler_s:>10,.0f} events/s")
    print(f"contract parse_event alone              {RECORDS / contract_s:>10,.0f} events/s")
    print(f"ratio handler / baseline   {baseline_s / handler_s:.2f}  (goal >= 0.7)")
    print(f"ratio handler / parse_event alone  {contract_s / handler_s:.2f}")
    print(
        f"handler import time        median {statistics.median(imports) * 1000:.0f} ms, "
        f"min {min(imports) * 1000:.0f} ms  (goal <= 300 ms)"
    )
    print(f"pandas/pyarrow imported    {heavy}")
    write_json(
        args.json,
        "ingest_handler",
        [
            Figure(
                "ingest handler throughput",
                RECORDS / handler_s,
                "events/s",
                baseline=RECORDS / baseline_s,
                goal=">= 0.7",
                note="baseline: bare BatchProcessor + json.loads",
            ),
            Figure(
                "ingest handler vs parse_event alone",
                RECORDS / handler_s,
                "events/s",
                baseline=RECORDS / contract_s,
            ),
            Figure("ingest handler import", statistics.median(imports) * 1000, "ms", goal="<= 300"),
        ],
        quick=args.quick,
        details={"records": RECORDS, "repeats": REPEATS, "pandas_or_pyarrow": heavy},
    )


if __name__ == "__main__":
    main()
