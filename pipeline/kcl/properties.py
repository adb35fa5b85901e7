"""The MultiLangDaemon's properties file, generated from the template's names.

Keys are case-sensitive and the daemon silently ignores a key it does not know, so every key
this module writes is a constant checked by a unit test against the names KCL 3 reads.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path


@dataclass(frozen=True)
class KclTiming:
    """Lease and polling timing. Defaults suit a local run: fast failover, quick polls.

    ``failover_ms`` is how long a lease may go unrenewed before another worker may take it;
    production keeps the KCL default of 10 s or more. ``worker_metrics_report_ms``: KCL 3's
    leader reassigns a dead worker's leases only once that worker's metrics row is two reports
    old, so at the default 30 s a surviving worker waited up to a minute for the lease
    (measured: 56 s after the kill); production keeps the default.
    """

    failover_ms: int = 3000
    idle_between_reads_ms: int = 200
    shard_sync_interval_ms: int = 2000
    parent_shard_poll_ms: int = 1000
    task_backoff_ms: int = 200
    lease_assignment_interval_ms: int = 1000
    graceful_handoff_timeout_ms: int = 2000
    worker_metrics_report_ms: int = 1000
    max_records: int = 500


@dataclass(frozen=True)
class KclConfig:
    """What one KCL application needs: the stream, its lease table name and the endpoints."""

    stream_name: str
    application_name: str
    region: str
    command: Sequence[str]
    endpoint_url: str | None = None
    worker_id: str | None = None
    initial_position: str = "TRIM_HORIZON"
    timing: KclTiming = field(default_factory=KclTiming)


def render(config: KclConfig) -> str:
    """The properties file text for ``config`` (``key = value`` lines)."""
    t = config.timing
    values: dict[str, str | int] = {
        # The daemon splits executableName on spaces; each argument is quoted-free by design.
        "executableName": " ".join(config.command),
        "streamName": config.stream_name,
        "applicationName": config.application_name,
        # The lease table (``tableName``, not ``leaseTableName``, which the daemon ignores);
        # KCL 3 adds ``<application>-CoordinatorState`` and ``-WorkerMetricStats`` beside it.
        "tableName": config.application_name,
        "regionName": config.region,
        "initialPositionInStream": config.initial_position,
        "AwsCredentialsProvider": "DefaultCredentialsProvider",
        "processingLanguage": "python/3.11",
        # Polling (GetRecords) instead of enhanced fan-out: SubscribeToShard needs a
        # consumer ARN and an HTTP/2 event stream the emulator does not offer.
        "retrievalMode": "POLLING",
        # No CloudWatch metrics from the daemon (the processor emits EMF itself).
        "metricsLevel": "NONE",
        # KCL 3 samples worker CPU through the EC2/ECS metadata endpoints by default; that
        # would send traffic to a link-local address. Balance leases by throughput instead.
        "disableWorkerMetrics": "true",
        "failoverTimeMillis": t.failover_ms,
        "idleTimeBetweenReadsInMillis": t.idle_between_reads_ms,
        "shardSyncIntervalMillis": t.shard_sync_interval_ms,
        "parentShardPollIntervalMillis": t.parent_shard_poll_ms,
        "taskBackoffTimeMillis": t.task_backoff_ms,
        "leaseAssignmentIntervalMillis": t.lease_assignment_interval_ms,
        "gracefulLeaseHandoffTimeoutMillis": t.graceful_handoff_timeout_ms,
        "workerMetricsReporterFreqInMillis": t.worker_metrics_report_ms,
        "maxRecords": t.max_records,
    }
    if config.worker_id:
        values["workerId"] = config.worker_id
    if config.endpoint_url:
        values["kinesisEndpoint"] = config.endpoint_url
        values["dynamoDBEndpoint"] = config.endpoint_url
    return "".join(f"{key} = {value}\n" for key, value in values.items())


def write(config: KclConfig, path: Path) -> Path:
    """Write the properties file for ``config`` to ``path``; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config))
    return path


def parse(text: str) -> Mapping[str, str]:
    """The ``key = value`` pairs of a properties text (comments and blanks skipped)."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, _, value = stripped.partition("=")
        pairs[key.strip()] = value.strip()
    return pairs


def quote_command(command: Sequence[str]) -> str:
    """A shell rendering of ``command`` for messages (the daemon itself does not use a shell)."""
    return shlex.join(command)
