"""The pipeline wired for fault injection on one provisioned stack, reused across examples.

Provisioning a stack per example is too slow for hundreds of schedules, so every example
gets its own stream, raw and curated buckets, Glue database and DynamoDB tables on the
one stack, and the long-lived clients (the ingest handler's own, a producer's, a session
for the batch jobs) keep their fault hooks while each example swaps in its own plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipeline.faults import FaultInjector, inject, inject_session
from pipeline.local.event_source import EventSourceMapping
from pipeline.local.invoke import (
    LocalContext,
    function_env,
    handler_location,
    import_handler_module,
    patched_environ,
)
from tests.support.compaction_lake import Lake, fresh_lake

if TYPE_CHECKING:
    from types import ModuleType

    from pipeline.local.stack import LocalStack

FUNCTION = "IngestStreamFunction"


@dataclass
class Resources:
    """One example's private corner of the stack."""

    lake: Lake
    stream: str
    stream_arn: str
    inventory_table: str
    forecast_table: str | None


class World:
    """Handler, clients and injectors shared by every example on one stack."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.session = stack.session()
        self.admin = stack.session()  # never faulted: provisioning and assertions
        self.s3 = self.admin.client("s3")
        self.ddb = self.admin.client("dynamodb")
        self.kinesis_admin = self.admin.client("kinesis")
        self.producer_faults = FaultInjector()
        self.handler_faults = FaultInjector()
        self.batch_faults = FaultInjector()
        self.kinesis = self.session.client("kinesis")
        inject(self.kinesis, self.producer_faults)
        self.poll_kinesis = self.admin.client("kinesis")
        self.batch_session = stack.session()
        inject_session(self.batch_session, self.batch_faults)
        self.env = function_env(stack, FUNCTION)
        self.module = self._load_handler_module()
        with patched_environ(self.env):
            self.store, self.inventory = self.module._adapters()
        # The handler builds its clients once per container; the faults go on those.
        inject(self.store._s3, self.handler_faults)
        inject(self.inventory._ddb, self.handler_faults)
        self.mapping = EventSourceMapping.from_template(stack, FUNCTION)

    def _load_handler_module(self) -> ModuleType:
        path, _ = handler_location(self.stack, FUNCTION)
        with patched_environ(self.env):
            return import_handler_module(path, f"_fmcg_reliability_{uuid.uuid4().hex[:8]}")

    def handler(self, event: dict[str, Any], context: Any = None) -> Any:
        """The real ``lambda_handler`` under the function's environment."""
        with patched_environ(self.env):
            return self.module.lambda_handler(event, context or LocalContext(FUNCTION))

    def mapping_for(self, resources: Resources, batch_size: int) -> EventSourceMapping:
        """The template's mapping on this example's stream; no batching window (speed)."""
        return replace(
            self.mapping,
            stream_arn=resources.stream_arn,
            batch_size=batch_size,
            batching_window_s=0.0,
        )

    def provision(self, *, shards: int, forecast: bool, curated: bool = True) -> Resources:
        """A stream, a lake and tables for one example; points the handler at them.

        Without ``curated`` only the raw bucket is made (the stream path needs no more).
        """
        tag = uuid.uuid4().hex[:8]
        if curated:
            lake = fresh_lake(self.stack, self.admin)
        else:
            lake = Lake(f"{self.stack.stack_name}-{tag}-raw", "", "")
            self.s3.create_bucket(Bucket=lake.raw)
        stream = f"{self.stack.stack_name}-rel-{tag}"
        self.kinesis_admin.create_stream(StreamName=stream, ShardCount=shards)
        arn = self.kinesis_admin.describe_stream_summary(StreamName=stream)[
            "StreamDescriptionSummary"
        ]["StreamARN"]
        inventory = f"{self.stack.stack_name}-inv-{tag}"
        self._table(inventory, ["PK"])
        forecast_table = None
        if forecast:
            forecast_table = f"{self.stack.stack_name}-fc-{tag}"
            self._table(forecast_table, ["PK", "SK"])
        self.store.bucket = lake.raw
        self.inventory.table_name = inventory
        return Resources(lake, stream, arn, inventory, forecast_table)

    def _table(self, name: str, keys: list[str]) -> None:
        self.ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            KeySchema=[
                {"AttributeName": k, "KeyType": t}
                for k, t in zip(keys, ["HASH", "RANGE"], strict=False)
            ],
        )
