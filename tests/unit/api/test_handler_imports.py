"""The API handler starts light: importing it loads neither pandas nor pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PROBE = """
import json, os, sys
os.environ["FORECAST_TABLE"] = "t"
sys.path.insert(0, {handler_dir!r})
sys.path.insert(0, {repo!r})
import app
print(json.dumps({{m: m in sys.modules for m in ("pandas", "pyarrow", "numpy")}}))
"""


def test_given_a_fresh_interpreter_when_the_handler_is_imported_then_no_pandas_or_pyarrow() -> None:
    code = PROBE.format(handler_dir=str(REPO / "stream_consumers/get_forecast"), repo=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"pandas": False, "pyarrow": False, "numpy": False}
