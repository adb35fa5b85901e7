"""The emulator process itself: loopback only, HTTP/1.1 and h2c, empty-bodied answers."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from pipeline.local.emulator import aws_session
from pipeline.local.kcl import speaks_h2c


def test_given_a_missing_key_when_head_object_then_404_not_500(emulator_url: str) -> None:
    s3 = aws_session(emulator_url).client("s3")
    bucket = f"b{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="nope.parquet")
    assert info.value.response["Error"]["Code"] == "404"


def test_the_emulator_speaks_h2c_for_the_kcl(emulator_url: str) -> None:
    assert speaks_h2c(emulator_url)
