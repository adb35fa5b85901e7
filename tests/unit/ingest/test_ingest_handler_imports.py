"""The hot Lambda must not import pandas or pyarrow (cold start and package size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.ingest_factories import HANDLER_PATH

_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._adapters()
print(json.dumps(sorted(m for m in ("pandas", "pyarrow", "numpy") if m in sys.modules)))
"""


def test_given_the_handler_module_when_imported_and_wired_then_no_pandas_or_pyarrow() -> None:
    env = {
        **os.environ,
        "RAW_BUCKET": "raw",
        "INVENTORY_TABLE": "inv",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(HANDLER_PATH)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []
