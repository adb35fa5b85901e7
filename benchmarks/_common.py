"""Shared helpers of the benchmark scripts: the uniform ``--json`` / ``--quick`` options.

Every benchmark prints its figures for a human and, with ``--json PATH``, writes them as
one JSON record that ``benchmarks/run_all.py`` collects::

    {"benchmark": "producer", "quick": false, "figures": [
        {"name": "...", "value": 1.0, "unit": "events/s", "baseline": 0.2,
         "goal": ">= 5", "passed": true}, ...],
     "details": {...}}

``ratio`` is ``value / baseline`` when a baseline measured in the same run exists;
``goal`` is a comparison such as ``">= 0.7"`` applied to the ratio when there is one,
otherwise to the value.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run as ``python benchmarks/x.py``: the repo root makes ``pipeline`` importable.
    sys.path.insert(0, str(ROOT))

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass
class Figure:
    """One measured figure, optionally against a same-run baseline and a goal."""

    name: str
    value: float
    unit: str = ""
    baseline: float | None = None
    goal: str | None = None
    note: str = ""
    ratio: float | None = field(default=None)
    passed: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.baseline:
            self.ratio = self.value / self.baseline
        if self.goal:
            self.passed = meets(self.ratio if self.ratio is not None else self.value, self.goal)


def meets(value: float, goal: str) -> bool:
    """Whether ``value`` satisfies ``goal`` (``">= 0.7"``, ``"<= 1500"``, ``"0.77..0.83"``)."""
    if ".." in goal:
        low, _, high = goal.partition("..")
        return float(low) <= value <= float(high)
    op, _, threshold = goal.strip().partition(" ")
    if op not in _OPS:
        raise ValueError(f"goal {goal!r} must start with one of {sorted(_OPS)}")
    return bool(_OPS[op](value, float(threshold)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--json PATH`` and ``--quick`` to a benchmark's parser."""
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="a short run (for make bench)")


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, Python, OS."""
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def write_json(
    path: Path | None,
    benchmark: str,
    figures: list[Figure],
    *,
    quick: bool = False,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The benchmark's JSON record; written to ``path`` when one is given."""
    record = {
        "benchmark": benchmark,
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": [asdict(f) for f in figures],
        "details": details or {},
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def measure_in_process(script: str, args: list[str], env: dict[str, str], what: str) -> Any:
    """Run ``script --measure *args`` in a fresh process (its imports and peak RSS are its
    own) and return the JSON its last output line prints; exit naming ``what`` if it fails."""
    out = subprocess.run(
        [sys.executable, script, "--measure", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
