"""Bodies sent with ``Transfer-Encoding: chunked`` reach the emulator whole.

The AWS SDK for C++ behind pyarrow's S3 filesystem (which PyIceberg writes data and
metadata files through) streams ``UploadPart`` bodies chunked, without a length; before
``pipeline.local.server.chunked_bodies_sized`` moto stored them as empty parts.
"""

from __future__ import annotations

import uuid

from pipeline.local.emulator import aws_session
from pipeline.query.duckdb_engine import s3_filesystem


def test_given_a_stream_written_through_pyarrow_then_s3_holds_every_byte(
    emulator_url: str,
) -> None:
    session = aws_session(emulator_url)
    bucket = f"chunked-{uuid.uuid4().hex[:8]}"
    session.client("s3").create_bucket(Bucket=bucket)
    body = b"".join(f"line {i}\n".encode() for i in range(200_000))  # > 1 MiB, several chunks

    with s3_filesystem(session).open_output_stream(f"{bucket}/a/stream.bin") as out:
        out.write(body)

    stored = session.client("s3").get_object(Bucket=bucket, Key="a/stream.bin")["Body"].read()
    assert len(stored) == len(body)
    assert stored == body
