"""A KCL worker against a local stack: names from the template, files, lease state.

Used by ``fmcg kcl run`` and by the functional tests, so both start the daemon the same way.
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from pipeline.aws_errors import (
    CONDITIONAL_CHECK_FAILED,
    RESOURCE_IN_USE,
    RESOURCE_NOT_FOUND,
    error_code,
)
from pipeline.errors import ConfigurationError
from pipeline.kcl import worker
from pipeline.kcl.properties import KclConfig, KclTiming
from pipeline.local.emulator import REGION, local_environment

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    import boto3

    from pipeline.local.stack import LocalStack

STREAM_RESOURCE: Final = "SalesStream"
#: The function whose environment (raw bucket, inventory table) the KCL consumer shares.
INGEST_FUNCTION: Final = "IngestStreamFunction"
#: The HTTP/2 connection preface a prior-knowledge h2c client opens with.
_H2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def application_name(stack_name: str) -> str:
    """The KCL application of a stack; it also names the lease table."""
    return f"{stack_name}-kcl"


def worker_config(
    stack: LocalStack,
    *,
    worker_id: str | None = None,
    timing: KclTiming | None = None,
    python: str | None = None,
) -> KclConfig:
    """The daemon configuration for ``stack``: its stream, lease table and emulator."""
    return KclConfig(
        stream_name=stack.ref(STREAM_RESOURCE),
        application_name=application_name(stack.stack_name),
        region=REGION,
        command=worker.processor_command(python),
        endpoint_url=stack.endpoint_url,
        worker_id=worker_id,
        timing=timing or KclTiming(),
    )


def worker_env(stack: LocalStack, base: dict[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment: emulator endpoint and credentials plus the ingest names."""
    names = {
        k: v
        for k, v in stack.function_environment(INGEST_FUNCTION).items()
        if not k.startswith("POWERTOOLS_")
    }
    base_env = dict(os.environ if base is None else base)
    return worker.worker_environment({**base_env, **local_environment(stack.endpoint_url)}, names)


def speaks_h2c(endpoint_url: str, timeout_s: float = 3.0) -> bool:
    """Whether the server at ``endpoint_url`` accepts a prior-knowledge HTTP/2 connection.

    An HTTP/2 server answers the preface with a SETTINGS frame (type 0x4 in byte 4); an
    HTTP/1.1-only server answers with an ``HTTP/1.x 400`` status line.
    """
    parts = urlsplit(endpoint_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout_s)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.sendall(_H2_PREFACE)
        head = conn.sock.recv(9)
    except OSError:
        return False
    finally:
        conn.close()
    return len(head) == 9 and head[3] == 0x4


def require_h2c(endpoint_url: str) -> None:
    """Raise :class:`ConfigurationError` unless the emulator speaks h2c (the KCL needs it)."""
    if not speaks_h2c(endpoint_url):
        raise ConfigurationError(
            f"the emulator at {endpoint_url} does not speak HTTP/2 (h2c), which the KCL's "
            "Kinesis client requires; restart it with `fmcg local down && fmcg local up`"
        )


@dataclass
class LocalWorker:
    """One MultiLangDaemon process over ``stack``; its files and log live in ``directory``."""

    stack: LocalStack
    directory: Path
    worker_id: str
    timing: KclTiming = field(default_factory=KclTiming)
    log_level: str = "INFO"
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.worker_id}.log"

    def start(self) -> LocalWorker:
        """Write the worker's files and start the daemon."""
        config = worker_config(self.stack, worker_id=self.worker_id, timing=self.timing)
        files = worker.write_files(
            config, self.directory / self.worker_id, log_level=self.log_level
        )
        self._log = self.log_path.open("ab")
        self.process = worker.start(files, worker_env(self.stack), log=self._log)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop gracefully (leases handed off), killing whatever is left after a timeout."""
        if self.process is not None:
            worker.stop(self.process)
        self._close()

    def kill(self) -> None:
        """Kill the worker and its processors at once, as a crashed machine would."""
        if self.process is not None:
            worker.kill(self.process)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Lease:
    """One row of the lease table: who owns a shard and where its checkpoint is."""

    shard_id: str
    owner: str | None
    checkpoint: str
    sub_sequence: int


def leases(session: boto3.session.Session, table: str) -> dict[str, Lease]:
    """The lease table's rows by shard id (empty while the table does not exist yet)."""
    ddb = session.client("dynamodb")
    try:
        pages = ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        items: list[dict[str, Any]] = [item for page in pages for item in page["Items"]]
    except ClientError as e:
        if error_code(e) != RESOURCE_NOT_FOUND:
            raise
        return {}
    out: dict[str, Lease] = {}
    for item in items:
        key = item["leaseKey"]["S"]
        out[key] = Lease(
            shard_id=key,
            owner=item.get("leaseOwner", {}).get("S"),
            checkpoint=item.get("checkpoint", {}).get("S", ""),
            sub_sequence=int(item.get("checkpointSubSequenceNumber", {}).get("N", "0")),
        )
    return out


LEASE_OWNER_INDEX: Final = "LeaseOwnerToLeaseKeyIndex"


def seed_leases(
    session: boto3.session.Session, stream_name: str, table: str, *, position: str = "TRIM_HORIZON"
) -> int:
    """Fill an empty lease table with one unowned lease per shard, as KCL's shard sync would.

    A worker that finds the lease table empty waits a random 1 to 30 s for another worker
    to sync shards before it does so itself (a fixed KCL constant). Seeding the leases the
    way ``HierarchicalShardSyncer`` writes them for a stream without resharding (no parent
    shards) lets every worker start at once. The table is the template's ``KclLeaseTable``;
    one missing (a stack provisioned from an older template) is created as the KCL creates
    it. Returns the number of leases written: 0 when the table already holds leases (the
    KCL then owns them), and a lease a worker wrote meanwhile is left as it is.
    """
    ddb = session.client("dynamodb")
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "leaseKey", "AttributeType": "S"},
                {"AttributeName": "leaseOwner", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": LEASE_OWNER_INDEX,
                    "KeySchema": [
                        {"AttributeName": "leaseOwner", "KeyType": "HASH"},
                        {"AttributeName": "leaseKey", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        )
    except ClientError as e:
        if error_code(e) != RESOURCE_IN_USE:
            raise
        if ddb.scan(TableName=table, Limit=1, ConsistentRead=True)["Items"]:
            return 0
    shards = session.client("kinesis").list_shards(StreamName=stream_name)["Shards"]
    written = 0
    for shard in shards:
        item: dict[str, Any] = {
            "leaseKey": {"S": shard["ShardId"]},
            "checkpoint": {"S": position},
            "checkpointSubSequenceNumber": {"N": "0"},
            "leaseCounter": {"N": "0"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
            "startingHashKey": {"S": shard["HashKeyRange"]["StartingHashKey"]},
            "endingHashKey": {"S": shard["HashKeyRange"]["EndingHashKey"]},
        }
        parents = [shard[k] for k in ("ParentShardId", "AdjacentParentShardId") if shard.get(k)]
        if parents:
            item["parentShardId"] = {"SS": parents}
        try:
            ddb.put_item(
                TableName=table, Item=item, ConditionExpression="attribute_not_exists(leaseKey)"
            )
        except ClientError as e:
            if error_code(e) != CONDITIONAL_CHECK_FAILED:
                raise
            continue
        written += 1
    return written


def leader(session: boto3.session.Session, application: str) -> str | None:
    """The worker holding the KCL 3 leader lock (``Leader`` in ``<app>-CoordinatorState``).

    The leader assigns leases. Its lock lasts two minutes (fixed in KCL 3.1), so when the
    leader dies its shards wait for a new leader; any other worker's shards move within
    ``failoverTimeMillis``.
    """
    ddb = session.client("dynamodb")
    try:
        item = ddb.get_item(
            TableName=f"{application}-CoordinatorState",
            Key={"key": {"S": "Leader"}},
            ConsistentRead=True,
        ).get("Item")
    except ClientError as e:
        if error_code(e) != RESOURCE_NOT_FOUND:
            raise
        return None
    return item["ownerName"]["S"] if item and "ownerName" in item else None


def require_jars() -> None:
    """Fail early, with the fix, when the daemon's jars or Java are missing."""
    from pipeline.kcl.jars import jar_directory, java_executable

    jar_directory()
    java_executable()


__all__ = [
    "Lease",
    "LocalWorker",
    "application_name",
    "leader",
    "leases",
    "require_h2c",
    "require_jars",
    "seed_leases",
    "speaks_h2c",
    "worker_config",
    "worker_env",
]
