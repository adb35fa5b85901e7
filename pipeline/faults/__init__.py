"""Fault injection for AWS calls: prove the pipeline's guarantees under failures.

``inject(client, FaultPlan(...))`` breaks chosen operations of one boto3 client (or every
client of a session with :func:`inject_session`): 5xx, throttling, timeouts, partial
PutRecords / BatchWriteItem failures (the failed items are really not written), lost
responses (applied, but the caller sees a timeout) and kill points (applied, then the
process dies with :class:`ProcessKilled`).
"""

from pipeline.faults.injector import FaultInjector, ProcessKilled, inject, inject_session
from pipeline.faults.plan import FaultKind, FaultPlan, FaultRule

__all__ = [
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "ProcessKilled",
    "inject",
    "inject_session",
]
