"""Glue Python-shell job: forecast demand for every SKU x location (thin wiring only).

Arguments arrive Glue-style as ``--name value`` pairs; Glue adds its own (``--library-set``,
``--job-bookmark-option``, ...), which are ignored. Progress lines go to stderr, the report as
one JSON line to stdout (after the ForecastBias EMF line). ``--as_of yyyy-mm-dd`` backfills
the forecast a run on that day would have made.
"""

from __future__ import annotations

import json
import sys
from datetime import date

from pipeline.forecasting.job import run_forecast
from pipeline.glue_args import parse_glue_args

REQUIRED = ("curated_bucket", "database", "forecast_table")


def _progress(stage: str, done: int, total: int) -> None:
    sys.stderr.write(f"progress {stage} {done} {total}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_glue_args(sys.argv[1:] if argv is None else argv)
    missing = [name for name in REQUIRED if not args.get(name)]
    if missing:
        sys.stderr.write(f"missing job arguments: {', '.join('--' + m for m in missing)}\n")
        return 2
    try:
        as_of = date.fromisoformat(args["as_of"]) if args.get("as_of") else None
    except ValueError:
        sys.stderr.write(f"--as_of must be a date (yyyy-mm-dd), got {args['as_of']!r}\n")
        return 2
    report = run_forecast(
        curated_bucket=args["curated_bucket"],
        database=args["database"],
        forecast_table=args["forecast_table"],
        horizon_days=int(args.get("horizon_days") or 28),
        as_of=as_of,
        progress=_progress,
    )
    sys.stdout.write(json.dumps({"report": report.as_dict()}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
