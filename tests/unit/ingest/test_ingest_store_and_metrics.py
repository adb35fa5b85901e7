"""S3RawStore error translation and the EMF lines of IngestMetrics."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from botocore.stub import Stubber

from pipeline.aws_errors import AwsError
from pipeline.errors import TerminalError, TransientError
from pipeline.ingest import IngestMetrics, IngestResult, S3RawStore


def _stubbed_store() -> tuple[S3RawStore, Stubber]:
    s3 = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client("s3")
    return S3RawStore("raw", s3), Stubber(s3)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("RequestTimeout", 400, TransientError),
        ("AccessDenied", 403, TerminalError),
        ("NoSuchBucket", 404, TerminalError),
    ],
)
def test_given_s3_answers_an_error_when_putting_then_it_is_translated(
    code: str, status: int, expected: type[Exception]
) -> None:
    store, stub = _stubbed_store()
    stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
    with stub, pytest.raises(expected, match=rf"put s3://raw/k: {code} \({status}\)") as info:
        store.put("k", b"{}\n")
    assert isinstance(info.value, AwsError) and info.value.__cause__ is not None
    assert (info.value.service, info.value.operation, info.value.code, info.value.status) == (
        "s3",
        "PutObject",
        code,
        status,
    )
    assert info.value.resource == "s3://raw/k"


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectTimeoutError(endpoint_url="http://x"),
    ],
)
def test_given_the_connection_fails_when_putting_then_it_is_transient(error: Exception) -> None:
    store, _ = _stubbed_store()
    store._s3.put_object = lambda **_: (_ for _ in ()).throw(error)  # type: ignore[method-assign]
    with pytest.raises(TransientError, match=type(error).__name__):
        store.put("k", b"{}\n")


def _emf_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_given_a_result_when_flushed_then_each_namespace_gets_its_own_metrics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = IngestMetrics(service="ingest")
    result = IngestResult(3, 4, 3, {"invalid_json": 1}, lag_ms=(1.0, 2.0, 3.0), stockout_count=7)

    metrics.record(result)
    metrics.flush()

    by_namespace: dict[str, dict[str, object]] = {}
    for line in _emf_lines(capsys.readouterr().out):
        namespace = line["_aws"]["CloudWatchMetrics"][0]["Namespace"]  # type: ignore[index]
        by_namespace.setdefault(namespace, {}).update(line)
    assert by_namespace["FMCG/System"]["StreamLagMilliseconds"] == [1.0, 2.0, 3.0]
    assert by_namespace["FMCG/System"]["QuarantinedRecords"] == [1.0]
    assert "StockoutCount" not in by_namespace["FMCG/System"]
    assert by_namespace["FMCG/Business"]["StockoutCount"] == [7.0]
    assert "StreamLagMilliseconds" not in by_namespace["FMCG/Business"]


def test_given_250_lag_values_then_no_emf_line_carries_more_than_100(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = IngestMetrics()
    metrics.record(IngestResult(250, 250, 250, {}, lag_ms=tuple(float(i) for i in range(250))))
    metrics.flush()

    lines = _emf_lines(capsys.readouterr().out)
    values = [line["StreamLagMilliseconds"] for line in lines if "StreamLagMilliseconds" in line]
    assert [len(v) for v in values] == [100, 100, 50]  # type: ignore[arg-type]
    assert sum(values, []) == [float(i) for i in range(250)]  # type: ignore[arg-type]
