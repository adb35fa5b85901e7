"""The curated tables' file IO: PyIceberg's pyarrow IO, each S3 file written in one request.

pyarrow's S3 output stream starts a multipart upload when it is opened, so every file
PyIceberg writes, however small, took three requests (CreateMultipartUpload, UploadPart,
CompleteMultipartUpload); a commit writes several small ones (the data files of a run's
hour, a manifest, a manifest list, the metadata JSON). With ``allow_delayed_open`` pyarrow
opens the upload on the first full part instead, and a file smaller than a part is one
PutObject (measured on the emulator: 3 requests -> 1). PyIceberg exposes no property for it
(0.12), so the file system it builds is rebuilt with it set; everything else is PyIceberg's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pyiceberg.io.pyarrow import PyArrowFileIO

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

#: The catalog property naming this class (PyIceberg's ``py-io-impl``).
FILE_IO: Final = {"py-io-impl": "pipeline.lake.fileio.SinglePutFileIO"}


class SinglePutFileIO(PyArrowFileIO):
    """:class:`PyArrowFileIO` whose S3 file system opens each upload on its first write."""

    def _initialize_s3_fs(self, netloc: str | None) -> FileSystem:
        built = super()._initialize_s3_fs(netloc)
        # The options PyIceberg chose, as pyarrow pickles them, with the one it does not set.
        rebuild, (options,) = built.__reduce__()
        return rebuild({**options, "allow_delayed_open": True})  # type: ignore[no-any-return]
