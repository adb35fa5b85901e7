"""The line protocol between the Glue job process and ``fmcg compact``.

The job writes one JSON line per progress step and one for the final report on stdout
(CloudWatch Logs on AWS); the CLI reads them to drive its progress bar. Any other line is
ordinary log output.
"""

from __future__ import annotations

import json
from typing import Any, Final

PROGRESS: Final = "FMCG-PROGRESS "
REPORT: Final = "FMCG-REPORT "


def progress_line(step: str, done: int, total: int) -> str:
    """One progress line."""
    return PROGRESS + json.dumps({"step": step, "done": done, "total": total})


def report_line(report: dict[str, Any]) -> str:
    """The final report line."""
    return REPORT + json.dumps(report, sort_keys=True)


def parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """``("progress", {...})``, ``("report", {...})`` or ``None`` for any other line."""
    for kind, prefix in (("progress", PROGRESS), ("report", REPORT)):
        if line.startswith(prefix):
            try:
                body = json.loads(line[len(prefix) :])
            except ValueError:
                return None
            return (kind, body) if isinstance(body, dict) else None
    return None
