"""Inject faults into boto3 clients through botocore's event hooks.

Three hooks, all keyed by the event name's ``<service>.<Operation>`` suffix:

- ``before-parameter-build``: a ``partial`` fault takes some items out of the request
  (PutRecords ``Records``, BatchWriteItem ``RequestItems``), so they are never written;
- ``before-send``: a wire fault (5xx, throttling, read or connect timeout) replaces the
  HTTP exchange; botocore's retry mode handles it like the real thing, so retries may
  absorb it (which is what production sees too);
- ``after-call``: the taken-out items come back as failed (``FailedRecordCount`` and
  per-record ``ErrorCode``, or ``UnprocessedItems``); ``response_lost`` raises a read
  timeout although the service applied the call; ``kill`` raises :class:`ProcessKilled`
  after the call was applied, which no ``except Exception`` stops: the process "dies".

One :class:`FaultInjector` can serve many clients and sessions; :meth:`FaultInjector.reset`
swaps its plan and counters, so a long-lived client can take a new plan per test case.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from pipeline.faults.plan import AFTER_KINDS, WIRE_KINDS, FaultPlan, FaultRule
from pipeline.faults.responses import error_code, error_response

if TYPE_CHECKING:
    import boto3
    from botocore.awsrequest import AWSRequest, AWSResponse
    from botocore.hooks import BaseEventHooks

_CONTEXT_KEY = "fmcg_faults_removed"
_UNIQUE = "fmcg-faults"


class ProcessKilled(BaseException):  # noqa: N818 - named for what it simulates
    """The process died at a kill point. A ``BaseException`` so handlers cannot catch it."""


class FaultInjector:
    """Decides and applies the faults of one :class:`FaultPlan`; counts what it injected."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.reset(plan or FaultPlan())

    def reset(self, plan: FaultPlan) -> None:
        """Take a new plan; counters and the RNG start over."""
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self.calls: Counter[str] = Counter()
            self.injected: Counter[str] = Counter()
            self.items_failed = 0

    @property
    def total_injected(self) -> int:
        """How many faults were injected since the last :meth:`reset`."""
        return sum(self.injected.values())

    # ------------------------------------------------------------------ attaching
    def attach(self, events: BaseEventHooks) -> None:
        """Register the hooks on an event emitter (idempotent per emitter)."""
        events.register("before-parameter-build", self._before_build, unique_id=f"{_UNIQUE}-b")
        events.register("before-send", self._before_send, unique_id=f"{_UNIQUE}-s")  # type: ignore[arg-type]
        events.register("after-call", self._after_call, unique_id=f"{_UNIQUE}-a")

    # ------------------------------------------------------------------ deciding
    def _fires(self, operation: str, phase: str, kinds: frozenset[str]) -> FaultRule | None:
        rules = [r for r in self.plan.for_operation(operation) if r.kind in kinds]
        if not rules:
            return None
        with self._lock:
            self.calls[f"{phase}:{operation}"] += 1
            number = self.calls[f"{phase}:{operation}"]
            for rule in rules:
                key = f"{operation}:{rule.kind}"
                if rule.limit is not None and self.injected[key] >= rule.limit:
                    continue
                if number in rule.calls or (rule.rate and self._rng.random() < rule.rate):
                    self.injected[key] += 1
                    return rule
        return None

    # ------------------------------------------------------------------ hooks
    def _before_build(
        self, params: dict[str, Any], context: dict[str, Any], event_name: str, **_: Any
    ) -> None:
        operation = _operation(event_name)
        # Its own count: the after-call hook numbers the same API calls, and one counter for
        # both would make each call count twice when a plan has both kinds of rule.
        rule = self._fires(operation, "build", frozenset({"partial"}))
        if rule is None:
            return
        if operation == "kinesis.PutRecords":
            records = list(params.get("Records", []))
            failed = self._pick(len(records), rule.share)
            params["Records"] = [r for i, r in enumerate(records) if i not in failed]
            context[_CONTEXT_KEY] = (sorted(failed), len(records))
        else:  # dynamodb.BatchWriteItem
            removed: dict[str, list[Any]] = {}
            kept: dict[str, list[Any]] = {}
            flat = [(t, r) for t, reqs in params.get("RequestItems", {}).items() for r in reqs]
            failed = self._pick(len(flat), rule.share)
            for i, (table, request) in enumerate(flat):
                (removed if i in failed else kept).setdefault(table, []).append(request)
            params["RequestItems"] = kept
            context[_CONTEXT_KEY] = removed
        with self._lock:
            self.items_failed += len(failed)

    def _pick(self, count: int, share: float) -> set[int]:
        # At least one item goes through: an empty request would be a validation error,
        # not the partial failure this simulates.
        if count < 2:
            return set()
        n = min(count - 1, max(1, round(count * share)))
        with self._lock:
            return set(self._rng.sample(range(count), n))

    def _before_send(self, request: AWSRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = _operation(event_name)
        rule = self._fires(operation, "attempt", WIRE_KINDS)
        if rule is None:
            return None
        url = request.url or operation
        if rule.kind == "read_timeout":
            raise ReadTimeoutError(endpoint_url=url)
        if rule.kind == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=url)
        return error_response(operation.split(".", 1)[0], rule.kind, url)

    def _after_call(
        self,
        http_response: AWSResponse,
        parsed: dict[str, Any],
        context: dict[str, Any],
        event_name: str,
        **_: Any,
    ) -> None:
        operation = _operation(event_name)
        removed = context.pop(_CONTEXT_KEY, None)
        if removed is not None and http_response.status_code < 300:
            _report_failed(operation, parsed, removed)
        if http_response.status_code >= 300:
            return
        rule = self._fires(operation, "call", AFTER_KINDS)
        if rule is None:
            return
        if rule.kind == "kill":
            raise ProcessKilled(f"killed after {operation} was applied")
        raise ReadTimeoutError(endpoint_url=getattr(http_response, "url", "") or operation)


def _operation(event_name: str) -> str:
    """``"before-send.s3.PutObject"`` -> ``"s3.PutObject"``."""
    parts = event_name.split(".")
    return f"{parts[1]}.{parts[2]}" if len(parts) >= 3 else event_name


def _report_failed(operation: str, parsed: dict[str, Any], removed: Any) -> None:
    if operation == "kinesis.PutRecords":
        failed, total = removed
        code = error_code("kinesis", "throttle")
        results = list(parsed.get("Records", []))
        merged: list[dict[str, Any]] = []
        ok = iter(results)
        for i in range(total):
            if i in failed:
                merged.append({"ErrorCode": code, "ErrorMessage": "Rate exceeded for shard."})
            else:
                merged.append(next(ok))
        parsed["Records"] = merged
        parsed["FailedRecordCount"] = int(parsed.get("FailedRecordCount", 0)) + len(failed)
    else:
        unprocessed = parsed.setdefault("UnprocessedItems", {})
        for table, requests in removed.items():
            unprocessed.setdefault(table, []).extend(requests)


def inject(client: Any, plan: FaultPlan | FaultInjector) -> FaultInjector:
    """Attach faults to one boto3 client; returns the injector (its counters, its plan)."""
    injector = plan if isinstance(plan, FaultInjector) else FaultInjector(plan)
    injector.attach(client.meta.events)
    return injector


def inject_session(
    session: boto3.session.Session, plan: FaultPlan | FaultInjector
) -> FaultInjector:
    """Attach faults to every client ``session`` creates from now on (clients copy the
    session's event hooks when they are built, so existing clients are not affected)."""
    injector = plan if isinstance(plan, FaultInjector) else FaultInjector(plan)
    injector.attach(session.events)
    return injector
