"""The event source mapping as the template declares it: the function's ``Type: Kinesis`` event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, uuid5

from pipeline.errors import ConfigurationError
from pipeline.local.template import resolve

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


@dataclass(frozen=True)
class EventSourceMapping:
    """The properties of one Kinesis event source mapping (defaults are Lambda's)."""

    function_name: str
    stream_arn: str
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "LATEST"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    on_failure_arn: str | None = None
    #: The stack's bucket that ``on_failure_arn`` names: the only destination type emulated.
    on_failure_bucket: str | None = None
    parallelization_factor: int = 1

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rsplit("/", 1)[-1]

    @property
    def region(self) -> str:
        return self.stream_arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.stream_arn.split(":")[4]

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def uuid(self) -> str:
        """The mapping's identifier, which Lambda puts in its S3 destination's keys.

        Lambda draws one when the mapping is created; this one follows from the function
        and the stream, so a restarted poller keeps writing under the same prefix.
        """
        return str(uuid5(NAMESPACE_URL, f"{self.function_arn}|{self.stream_arn}"))

    @classmethod
    def from_template(cls, stack: LocalStack, function_logical_id: str) -> EventSourceMapping:
        """The mapping declared by the function's ``Type: Kinesis`` event in the template."""
        spec = stack.template["Resources"].get(function_logical_id)
        if spec is None:
            raise ConfigurationError(f"no resource {function_logical_id} in the template")
        events = spec.get("Properties", {}).get("Events", {})
        kinesis = [e for e in events.values() if e.get("Type") == "Kinesis"]
        if len(kinesis) != 1:
            raise ConfigurationError(
                f"{function_logical_id} has {len(kinesis)} Kinesis events; expected exactly 1"
            )
        props = resolve(kinesis[0].get("Properties", {}), stack.context())
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {})
        destination = on_failure.get("Destination")
        types = props.get("FunctionResponseTypes", []) or []
        return cls(
            function_name=function_logical_id,
            stream_arn=str(props["Stream"]),
            batch_size=int(props.get("BatchSize", 100)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=str(props.get("StartingPosition", "LATEST")),
            report_batch_item_failures="ReportBatchItemFailures" in types,
            bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            maximum_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            on_failure_arn=destination,
            on_failure_bucket=_bucket(stack, destination) if destination else None,
            parallelization_factor=int(props.get("ParallelizationFactor", 1)),
        )


def _bucket(stack: LocalStack, arn: str) -> str:
    """The name of the stack's bucket with this ARN (the ``Ref`` of a bucket is its name).

    Only S3 is emulated: the template's destination is a bucket because it keeps the
    failed records themselves, which an SQS or SNS destination's metadata does not.
    """
    for resource in stack.resources.values():
        if resource.type == "AWS::S3::Bucket" and resource.attributes.get("Arn") == arn:
            return resource.ref
    raise ConfigurationError(f"on-failure destination {arn} is not a bucket of the stack")
