"""Run the property suites with fresh random seeds, round after round, for a time budget.

``make test`` is derandomized (same commit, same result); this is where new inputs are
searched for. Each round runs ``tests/property`` (and the other Hypothesis tests) with a new
``--hypothesis-seed``, every test's example budget multiplied by ``--scale``, and stops at
the first failure, printing the command that replays it. Failing examples are also kept in
``.hypothesis/fuzz`` and tried first in later rounds; pin each one with ``@example``.

    python tests/fuzz.py --minutes 30 --scale 10
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Every test that uses Hypothesis: the property suites plus the property-style unit tests.
SUITES = ("tests/property", "tests/unit/api/test_pagination.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    parser.add_argument("--scale", type=int, default=10, help="examples x this (default 10)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (default 2)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.scale < 1:
        parser.error("--minutes must be > 0 and --scale >= 1")

    deadline = time.monotonic() + args.minutes * 60
    env = {
        **os.environ,
        "HYPOTHESIS_PROFILE": "fuzz",
        "FMCG_FUZZ_SCALE": str(args.scale),
        # The reliability suite sizes itself from these (its schedules are costly).
        "FMCG_RELIABILITY_EXAMPLES": str(90 * args.scale),
        "FMCG_RELIABILITY_E2E_EXAMPLES": str(12 * args.scale),
    }
    rounds = 0
    while time.monotonic() < deadline:
        seed = secrets.randbelow(2**32)
        rounds += 1
        command = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
            "-n", args.workers, f"--hypothesis-seed={seed}", *SUITES,
        ]  # fmt: skip
        print(f"fuzz round {rounds}: seed {seed}", flush=True)
        if subprocess.run(command, cwd=REPO, env=env, check=False).returncode != 0:
            print(
                f"fuzz: round {rounds} failed. Replay with\n"
                f"  HYPOTHESIS_PROFILE=fuzz FMCG_FUZZ_SCALE={args.scale} "
                f"{' '.join(command[:2])} pytest --hypothesis-seed={seed} {' '.join(SUITES)}",
                flush=True,
            )
            return 1
    print(f"fuzz: {rounds} rounds passed in {args.minutes:g} minutes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
