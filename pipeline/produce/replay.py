"""Quarantine objects: read them, and decide which of their records can go back to the stream.

A quarantine object is NDJSON, one line per rejected record, with ``reason``, ``detail``,
``shard_id``, ``sequence_number``, ``sub_sequence``, ``approximate_arrival`` and the raw
bytes in ``data_b64``. Replaying re-validates each event against the contract first: only
events that are valid now (fixed by hand, or accepted by a newer contract) are produced
again; the rest stay where they are, with the reason they still fail. A line holding a
whole KPL aggregate (``user_records`` set: the ingest core quarantines a mostly invalid or
oversized aggregate once) is replayed user record by user record.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pipeline.contracts import parse_event, validate_event
from pipeline.errors import RejectedRecord, TerminalError
from pipeline.ingest.decode import is_aggregate, user_records


@dataclass(frozen=True)
class QuarantinedRecord:
    """One line of a quarantine object."""

    reason: str
    detail: str
    shard_id: str
    sequence_number: str
    sub_sequence: int | None
    approximate_arrival: Any
    data: bytes

    @property
    def preview(self) -> str:
        """The first bytes of the record as text, for people to read."""
        return self.data[:160].decode("utf-8", errors="replace")


@dataclass
class ReplayPlan:
    """Events that validate now, and the records that still fail (with their reason)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    still_invalid: list[tuple[str, str]] = field(default_factory=list)


def parse_quarantine(body: bytes) -> list[QuarantinedRecord]:
    """Parse one quarantine object; a malformed line raises :class:`TerminalError`."""
    records = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            records.append(
                QuarantinedRecord(
                    reason=str(doc["reason"]),
                    detail=str(doc.get("detail", "")),
                    shard_id=str(doc.get("shard_id", "")),
                    sequence_number=str(doc.get("sequence_number", "")),
                    sub_sequence=doc.get("sub_sequence"),
                    approximate_arrival=doc.get("approximate_arrival"),
                    data=base64.b64decode(doc["data_b64"], validate=True),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise TerminalError(f"quarantine line {number} is not a quarantine record: {e}") from e
    return records


def plan_replay(
    records: list[QuarantinedRecord], fixes: list[dict[str, Any]] | None = None
) -> ReplayPlan:
    """What to produce again: the ``fixes`` if given (each validated), else the records."""
    plan = ReplayPlan()
    if fixes is not None:
        for index, event in enumerate(fixes):
            try:
                validate_event(event)
            except RejectedRecord as e:
                plan.still_invalid.append((f"fix #{index + 1}", str(e)))
            else:
                plan.events.append(event)
        return plan
    for record in records:
        where = f"{record.shard_id}:{record.sequence_number}"
        if not is_aggregate(record.data):
            _plan_one(plan, where, record.data)
            continue
        try:
            # No cap: an operator replays one object on purpose, and whatever valid events
            # an oversized aggregate holds are still events.
            parts = user_records(record.data, max_user_records=None)
        except RejectedRecord as e:
            plan.still_invalid.append((where, str(e)))
            continue
        for index, (_, data) in enumerate(parts):
            _plan_one(plan, f"{where}/{index}", data)
    return plan


def _plan_one(plan: ReplayPlan, where: str, data: bytes) -> None:
    try:
        _, obj = parse_event(data)
    except RejectedRecord as e:
        plan.still_invalid.append((where, str(e)))
    else:
        plan.events.append(obj)


def load_fixes(text: str) -> list[dict[str, Any]]:
    """Corrected events from a fix file: a JSON array or JSON lines of event objects."""
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            loaded = json.loads(stripped, parse_float=_finite_float)
        else:
            loaded = [
                json.loads(line, parse_float=_finite_float)
                for line in stripped.splitlines()
                if line.strip()
            ]
    except ValueError as e:
        raise TerminalError(f"fix file is neither a JSON array nor JSON lines: {e}") from e
    if not all(isinstance(item, dict) for item in loaded):
        raise TerminalError("fix file must hold JSON objects (one event each)")
    return list(loaded)


def _finite_float(text: str) -> float:
    # As the ingest decoder: json.loads would make 1e400 an inf, which the producer would
    # then send as the non-JSON Infinity.
    value = float(text)
    if math.isinf(value):
        raise TerminalError(f"fix file holds {text[:40]}, beyond the range of a double")
    return value
