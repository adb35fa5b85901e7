"""Glue Python-shell job: compact the raw zone into the curated zone.

Wiring only: Glue-style ``--name value`` arguments, a boto3 session (the platform's role on
AWS, ``AWS_ENDPOINT_URL`` locally), the core in :mod:`pipeline.compaction`, and progress
and report lines on stdout. On AWS the ``pipeline`` package ships as ``--extra-py-files``.
"""

from __future__ import annotations

import sys

import boto3

from pipeline.compaction import run_compaction
from pipeline.compaction.progress_lines import progress_line, report_line
from pipeline.glue_args import resolve_options

ARGUMENTS = ("raw_bucket", "curated_bucket", "database")


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """Run the job with ``argv`` (without the script name); the exit status."""
    options = resolve_options(argv, ARGUMENTS)
    report = run_compaction(
        raw_bucket=options["raw_bucket"],
        curated_bucket=options["curated_bucket"],
        database=options["database"],
        session=boto3.session.Session(),
        progress=lambda step, done, total: _emit(progress_line(step, done, total)),
    )
    _emit(report_line(report.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
