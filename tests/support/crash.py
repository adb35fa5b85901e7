"""A crash injected between two steps of a compaction run, that says whether it struck."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis import strategies as st

#: The steps every compaction run with at least one raw object reports (either engine), in
#: order; "commit tables" at 1 is between the ``sales`` and the ``daily_demand`` commit,
#: "commit" at 0 after both tables' commits and before the manifest PUT.
CRASH_STEPS = ("read raw", "write partitions", "commit tables", "commit")


class Crash(Exception):
    """Injected between two steps of a run."""


class Crasher:
    """A progress hook that raises once ``step`` reaches ``position`` of its total.

    At the first report at or past it: an engine may report a step sparsely (Spark's raw
    read reports only its start and its end), and every report ends at ``total``.
    """

    def __init__(self, step: str | None, position: float) -> None:
        self.step, self.position = step, position
        self.fired: str | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.fired is None and step == self.step and done >= round(self.position * total):
            self.fired = f"{step} {done}/{total}"
            raise Crash(self.fired)


def crash_run(draw: st.DrawFn, objects: int, first_run: int) -> int:
    """A run (0 or 1) that has objects: a run without them reports no step to crash at."""
    from hypothesis import strategies as st

    runs = [r for r, n in enumerate([first_run, objects - first_run]) if n]
    return draw(st.sampled_from(runs))
