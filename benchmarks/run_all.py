"""Run every benchmark of the project and write one results record (``make bench``).

Each script runs as its own subprocess (fresh interpreter, its own emulator) with a time
limit, in its quick mode where it has one, so the whole run stays under 15 minutes on 2
cores. Scripts that take ``--json PATH`` write their figures there; for the others the
last JSON object on stdout, if any, is taken, else only the output's tail is kept.

Writes ``benchmarks/results/<date>-<host>.json`` (every figure, the machine, each script's
exit status and time) and ``<date>-<host>.md`` (a table: figure, value, same-run baseline
and ratio where one exists, goal, pass/fail).

    .venv/bin/python benchmarks/run_all.py [--only stream_lag,producer] [--budget 840]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import machine, meets

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Bench:
    """One benchmark script: its quick arguments (when it has no ``--quick``), its limit."""

    name: str
    title: str
    fallback_args: tuple[str, ...] = ()
    timeout_s: float = 180.0


BENCHES = (
    Bench("ingest_handler", "Ingest handler CPU (consumer)", (), 180),
    Bench("producer", "Producer: KPL aggregation", ("--events", "5000"), 150),
    # Quick mode is 16 MB, an hour of ~22 events/s (the job runs hourly); 4 MB runs are
    # dominated by the fixed per-run cost, which the script reports apart.
    Bench("compaction", "Compaction (raw NDJSON -> Parquet)", ("--mb", "16"), 420),
    Bench(
        "compaction_history",
        "Compaction over history (after 60 days; days of hourly runs)",
        (),
        1500,
    ),
    Bench(
        "curated_growing_day", "Curated bytes written on a growing day (Iceberg appends)", (), 300
    ),
    Bench("query_planning", "Local query time as an Iceberg table's commits grow", (), 300),
    # Quick mode: 200 series x 365 days (73,000 rows), two rounds.
    Bench("history_import", "History import vs bare pyarrow (daily history -> Iceberg)", (), 300),
    # Four 28-day windows, AutoETS on all 944 series of each as the baseline (~2.5 min a
    # window with n_jobs=2 on 2 idle cores).
    Bench("forecaster", "Forecaster vs AutoETS (M5 subset, 944 series, 4 windows)", (), 1500),
    # Quick mode: 944 and 7,622 series (plus the 7,622 in one chunk as the baseline).
    Bench("forecaster_scale", "Forecaster memory as series grow", (), 300),
    Bench("dynamodb_writes", "DynamoDB forecast writes", ("--items", "1500"), 150),
    Bench("api_latency", "API latency (GET /forecasts)", (), 180),
    Bench("stream_lag", "Stream lag (Kinesis -> raw object)", (), 240),
)


#: Goals (from the issues) of the figures of scripts that print a plain JSON dict instead
#: of writing ``--json``; keys are the dotted names :func:`_flatten` gives.
STDOUT_GOALS: dict[str, dict[str, str]] = {
    "forecaster": {
        "standard_cutoff_ratio_vs_autoets": "<= 0.98",
        "earlier_windows_mean_ratio_vs_autoets": "<= 0.985",
    },
    "dynamodb_writes": {"ratio": ">= 10"},
}


@dataclass
class Outcome:
    """What one script did."""

    bench: Bench
    status: str  # ok | failed | timeout | missing | skipped
    seconds: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def figures(self) -> list[dict[str, Any]]:
        figures: list[dict[str, Any]] = self.record.get("figures", [])
        return figures


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The last JSON object printed on stdout (a script without ``--json``)."""
    lines = stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if not lines[start].startswith("{"):
            continue
        try:
            value = json.loads("\n".join(lines[start:]))
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _flatten(values: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Figures from a plain dict of numbers (nested dicts give dotted names)."""
    out: list[dict[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            is_ratio = "ratio" in key or "speedup" in key
            out.append({"name": name, "value": value, "unit": "x" if is_ratio else ""})
    return out


def _stop(proc: subprocess.Popen[str]) -> None:
    """Interrupt first, so the script's ``finally`` stops the emulator it started."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def run_one(bench: Bench, timeout_s: float, log_dir: Path) -> Outcome:
    """Run one script under ``timeout_s`` and collect its record."""
    script = HERE / f"{bench.name}.py"
    if not script.is_file():
        return Outcome(bench, "missing", note=f"{script.name} not present")
    if timeout_s < 20:
        return Outcome(bench, "skipped", note="time budget used up")
    source = script.read_text(encoding="utf-8")
    json_path = log_dir / f"{bench.name}.json"
    uniform = "add_arguments(" in source  # _common's --json / --quick
    argv = [sys.executable, str(script)]
    if uniform or "--json" in source:
        argv += ["--json", str(json_path)]
    argv += ["--quick"] if uniform or "--quick" in source else list(bench.fallback_args)
    print(f"== {bench.name}: {' '.join(argv[1:])} (limit {timeout_s:.0f} s)", flush=True)
    started = time.monotonic()
    with (log_dir / f"{bench.name}.log").open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(  # noqa: S603 - our interpreter, our scripts
            argv,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=HERE.parent,
            start_new_session=True,
        )
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return Outcome(
                bench, "timeout", time.monotonic() - started, note=f"over {timeout_s:.0f} s"
            )
    seconds = time.monotonic() - started
    print(stdout.rstrip(), flush=True)
    if proc.returncode != 0:
        tail = (log_dir / f"{bench.name}.log").read_text(encoding="utf-8").strip()
        return Outcome(bench, "failed", seconds, note=tail.splitlines()[-1] if tail else "")
    if json_path.is_file():
        return Outcome(bench, "ok", seconds, json.loads(json_path.read_text(encoding="utf-8")))
    printed = _last_json(stdout)
    if printed is not None:
        figures = _flatten(printed)
        for f in figures:
            goal = STDOUT_GOALS.get(bench.name, {}).get(f["name"])
            if goal:
                f.update(goal=goal, passed=meets(f["value"], goal))
        record = {"benchmark": bench.name, "figures": figures, "details": printed}
        return Outcome(bench, "ok", seconds, record, note="figures read from stdout JSON")
    record = {"benchmark": bench.name, "figures": [], "stdout": stdout[-4000:]}
    return Outcome(bench, "ok", seconds, record, note="no machine-readable figures")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def markdown(outcomes: list[Outcome], info: dict[str, Any], total_s: float) -> str:
    """The summary table of one run."""
    lines = [
        f"# Benchmarks {info['date']} on {info['machine']['host']}",
        "",
        f"{info['machine']['cores']} cores ({info['machine']['processor']}), Python "
        f"{info['machine']['python']}, {info['machine']['system']}; total {total_s / 60:.1f} "
        "min. Ratios are to a baseline measured in the same run. Quick modes where noted.",
        "",
        "| benchmark | figure | value | unit | baseline | ratio | goal | pass |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for o in outcomes:
        for f in o.figures:
            passed = f.get("passed")
            mark = "" if passed is None else ("pass" if passed else "**FAIL**")
            lines.append(
                f"| {o.bench.name} | {f['name']} | {_fmt(f.get('value'))} | {f.get('unit', '')}"
                f" | {_fmt(f.get('baseline'))} | {_fmt(f.get('ratio'))} | {f.get('goal') or ''}"
                f" | {mark} |"
            )
    lines += ["", "| benchmark | status | seconds | note |", "|---|---|---:|---|"]
    for o in outcomes:
        quick = " (quick)" if o.record.get("quick") else ""
        note = o.note.replace("|", "/")[:200]
        lines.append(f"| {o.bench.name}{quick} | {o.status} | {o.seconds:.0f} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--budget", type=float, default=840.0, help="seconds for all")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    chosen = [b for b in BENCHES if not only or b.name in only]

    now = datetime.now(UTC)
    info: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d"),
        "started_at": now.isoformat(timespec="seconds"),
        "machine": machine(),
    }
    began = time.monotonic()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="fmcg-bench-") as tmp:
        for bench in chosen:
            remaining = args.budget - (time.monotonic() - began)
            outcome = run_one(bench, min(bench.timeout_s, remaining), Path(tmp))
            print(f"-- {bench.name}: {outcome.status} in {outcome.seconds:.0f} s {outcome.note}")
            outcomes.append(outcome)

            # Plots a script wrote next to its JSON would go with the temporary directory.
            png = Path(str(outcome.record.get("details", {}).get("png", "")))
            if png.suffix == ".png" and png.is_file():
                args.out.mkdir(parents=True, exist_ok=True)
                kept = args.out / f"{now:%Y-%m-%d}-{info['machine']['host']}-{bench.name}.png"
                shutil.copyfile(png, kept)
                outcome.record["details"]["png"] = str(kept.relative_to(HERE.parent))
    total = time.monotonic() - began

    stem = f"{info['date']}-{info['machine']['host']}"
    args.out.mkdir(parents=True, exist_ok=True)
    body = {
        **info,
        "total_seconds": round(total, 1),
        "benchmarks": {
            o.bench.name: {
                "title": o.bench.title,
                "status": o.status,
                "seconds": round(o.seconds, 1),
                "note": o.note,
                **o.record,
            }
            for o in outcomes
        },
    }
    (args.out / f"{stem}.json").write_text(json.dumps(body, indent=2, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(outcomes, info, total))
    print(f"wrote {args.out / stem}.json and .md in {total / 60:.1f} min")


if __name__ == "__main__":
    main()
