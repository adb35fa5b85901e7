"""Synthetic AWS error responses, shaped per protocol so botocore parses them as real ones."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from pipeline.aws_errors import (
    DYNAMODB_INTERNAL_SERVER_ERROR,
    INTERNAL_FAILURE,
    PROVISIONED_THROUGHPUT_EXCEEDED,
    S3_INTERNAL_ERROR,
    S3_SLOW_DOWN,
    THROTTLING_EXCEPTION,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

#: (HTTP status, error code, message) per service and fault kind; ``*`` is any JSON service.
_ERRORS: Final[dict[tuple[str, str], tuple[int, str, str]]] = {
    ("s3", "server_error"): (500, S3_INTERNAL_ERROR, "We encountered an internal error."),
    ("s3", "throttle"): (503, S3_SLOW_DOWN, "Please reduce your request rate."),
    ("dynamodb", "server_error"): (500, DYNAMODB_INTERNAL_SERVER_ERROR, "Internal server error"),
    ("dynamodb", "throttle"): (
        400,
        PROVISIONED_THROUGHPUT_EXCEEDED,
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    ("kinesis", "server_error"): (500, INTERNAL_FAILURE, "Internal service failure."),
    ("kinesis", "throttle"): (
        400,
        PROVISIONED_THROUGHPUT_EXCEEDED,
        "Rate exceeded for shard in stream.",
    ),
    ("*", "server_error"): (500, INTERNAL_FAILURE, "Internal service failure."),
    ("*", "throttle"): (400, THROTTLING_EXCEPTION, "Rate exceeded."),
}
_JSON_VERSION: Final = {"dynamodb": "1.0"}


class _Body:
    """The ``raw`` of an :class:`AWSResponse`: botocore only calls ``stream()`` on errors."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._data


def error_code(service: str, kind: str) -> str:
    """The error code a synthetic ``kind`` fault of ``service`` carries."""
    return _ERRORS.get((service, kind), _ERRORS[("*", kind)])[1]


def error_response(service: str, kind: str, url: str) -> AWSResponse:
    """An HTTP error response for a ``server_error`` or ``throttle`` fault of ``service``."""
    status, code, message = _ERRORS.get((service, kind), _ERRORS[("*", kind)])
    headers = {"x-amzn-requestid": "fault-injected", "x-amz-request-id": "fault-injected"}
    if service == "s3":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>fault-injected</RequestId></Error>"
        ).encode()
        headers["content-type"] = "application/xml"
    else:
        version = _JSON_VERSION.get(service, "1.1")
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["content-type"] = f"application/x-amz-json-{version}"
    http_headers = HTTPHeaders()
    for name, value in headers.items():
        http_headers[name] = value
    return AWSResponse(url, status, http_headers, _Body(body))
