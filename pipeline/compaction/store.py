"""The S3 adapter of the compaction job: list, get, put, upload, download.

``botocore`` errors become :class:`~pipeline.errors.TransientError` (throttling, 5xx, a
timeout: Glue re-runs the job) or :class:`~pipeline.errors.TerminalError` (a missing bucket,
access denied) here, by :mod:`pipeline.aws_errors`' rule, so the core never looks at AWS
error codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import MISSING_OBJECT_CODES, error_code, translate

if TYPE_CHECKING:
    from pathlib import Path

    import boto3

_CHUNK = 1 << 20
_SINGLE_PUT_BYTES = 256 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    etag: str
    size: int


class LakeStore:
    """Thin S3 operations over one injected client."""

    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    @classmethod
    def from_session(cls, session: boto3.session.Session) -> LakeStore:
        return cls(session.client("s3"))

    def list(self, bucket: str, prefix: str, start_after: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (after the key ``start_after``), sorted by key."""
        out: list[ObjectInfo] = []
        # Pages by hand: a paginator loads a model file per client just to do this.
        args = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            args["StartAfter"] = start_after
        try:
            while True:
                page = self._s3.list_objects_v2(**args)
                out.extend(
                    ObjectInfo(o["Key"], o["ETag"].strip('"'), int(o["Size"]))
                    for o in page.get("Contents", [])
                )
                if not page.get("IsTruncated"):
                    break
                args["ContinuationToken"] = page["NextContinuationToken"]
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e, f"list s3://{bucket}/{prefix}", service="s3", resource=f"s3://{bucket}/{prefix}"
            ) from e
        return sorted(out, key=lambda o: o.key)

    def any_under(self, bucket: str, prefix: str) -> bool:
        """Whether any object's key starts with ``prefix`` (one LIST of at most one key)."""
        try:
            page = self._s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e, f"list s3://{bucket}/{prefix}", service="s3", resource=f"s3://{bucket}/{prefix}"
            ) from e
        return bool(page.get("Contents"))

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """One object's listing entry (a missing object is a terminal error naming it)."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e, f"head s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e
        return ObjectInfo(key, head["ETag"].strip('"'), int(head["ContentLength"]))

    def _body(self, bucket: str, key: str, what: str) -> Any:
        """The object's streaming body, or ``None`` when there is no such object."""
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as e:
            if error_code(e) in MISSING_OBJECT_CODES:
                return None
            raise translate(
                e, f"{what} s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e
        except BotoCoreError as e:
            raise translate(
                e, f"{what} s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or ``None`` when there is no such object."""
        body = self._body(bucket, key, "get")
        if body is None:
            return None
        try:
            data: bytes = body.read()
        except BotoCoreError as e:
            raise translate(
                e, f"get s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e
        return data

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        """Write one object (a single PUT: readers see the old or the new one, never a mix)."""
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e, f"put s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e

    def delete(self, bucket: str, key: str) -> None:
        """Delete one object (none there is fine: S3 answers the same)."""
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            raise translate(
                e, f"delete s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e

    def upload(self, path: Path, bucket: str, key: str) -> None:
        """Upload a local file; readers see the old or the new object, never a mix.

        Partition-sized files go in one PUT: ``upload_file`` sets up a transfer manager and
        threads per call, which costs more than the PUT itself. Larger files go multipart
        (a PUT takes at most 5 GB), which also only becomes visible once complete.
        """
        what = f"upload s3://{bucket}/{key}"
        try:
            if path.stat().st_size <= _SINGLE_PUT_BYTES:
                with path.open("rb") as body:
                    self._s3.put_object(Bucket=bucket, Key=key, Body=body)
            else:
                self._s3.upload_file(str(path), bucket, key)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, what, service="s3", resource=f"s3://{bucket}/{key}") from e
        except Exception as e:  # boto3's S3UploadFailedError wraps the ClientError
            cause = e.__cause__ or e.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise translate(cause, what, service="s3", resource=f"s3://{bucket}/{key}") from e
            raise

    def download(self, bucket: str, key: str, path: Path) -> bool:
        """Stream the object to ``path``; ``False`` when there is no such object.

        One GET (``download_file`` would HEAD first and start a transfer manager).
        """
        body = self._body(bucket, key, "download")
        if body is None:
            return False
        try:
            with path.open("wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)
        except BotoCoreError as e:
            raise translate(
                e, f"download s3://{bucket}/{key}", service="s3", resource=f"s3://{bucket}/{key}"
            ) from e
        return True
