"""KCL record processor process: ``python -m stream_consumers.kcl.app``.

The MultiLangDaemon starts one of these per shard lease and talks to it over stdin/stdout.
Wiring only: settings from the environment the worker sets (``RAW_BUCKET`` and friends),
clients built once, the logic in :class:`pipeline.kcl.processor.IngestRecordProcessor`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, TextIO

from amazon_kclpy import kcl

from pipeline.ingest import IngestMetrics
from pipeline.ingest.adapters import build_adapters
from pipeline.kcl.processor import IngestRecordProcessor
from pipeline.settings import IngestSettings

if TYPE_CHECKING:
    from pipeline.ingest import IngestResult


def _emit_metrics(result: IngestResult) -> None:
    metrics = IngestMetrics(service="kcl-consumer")
    metrics.record(result)
    metrics.flush()


def build_processor() -> IngestRecordProcessor:
    """The processor over the S3 raw bucket (and the inventory table when configured)."""
    store, inventory = build_adapters(IngestSettings.from_env())
    return IngestRecordProcessor(store=store, inventory=inventory, on_result=_emit_metrics)


def main(
    processor: IngestRecordProcessor | None = None,
    *,
    stdin: TextIO | None = None,
    protocol_out: TextIO | None = None,
) -> None:
    """Serve the MultiLang protocol until the daemon closes stdin."""
    protocol = protocol_out or sys.stdout
    # The real stdout belongs to the protocol; anything else that prints (EMF metrics go to
    # stdout by design) is sent to stderr, which the daemon copies into its log.
    with contextlib.redirect_stdout(sys.stderr):
        kcl.KCLProcess(
            processor or build_processor(), input_file=stdin or sys.stdin, output_file=protocol
        ).run()


if __name__ == "__main__":
    main()
