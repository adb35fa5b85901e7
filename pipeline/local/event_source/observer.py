"""The hooks the poller calls, for callers that measure it (the benchmarks).

Subclass :class:`PollObserver` and override what you need, as Powertools' batch processors
override ``success_handler`` / ``failure_handler``; the defaults do nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.local.event_source.invocation import Invocation


class PollObserver:
    """Told what the poller does. Hooks run on the shards' threads, concurrently."""

    def on_invocation(self, invocation: Invocation) -> None:
        """After the handler ran for a batch, before the result is applied to the shard."""


#: The observer of a poller given none.
NULL_OBSERVER = PollObserver()
