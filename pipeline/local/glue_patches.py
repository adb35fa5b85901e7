"""moto's Glue made to honour ``UpdateTable``'s ``VersionId``, as Glue does.

Apache Iceberg's Glue catalogs (PyIceberg's and the Java one Spark uses) lock optimistically:
a commit reads the Glue table, writes new metadata, and sends ``UpdateTable`` with the
``VersionId`` it read. Glue refuses the update when the table has moved on since, with
``ConcurrentModificationException: Update table failed due to concurrent modifications.``,
and the catalog turns that into ``CommitFailedException`` so the writer reloads and retries.
moto (through 5.2.6) counts a table's versions but never compares the one a caller sends, so
a racing commit silently replaces the other's metadata pointer and its rows are lost: the
local stack could never show a conflict. The emulator (``pipeline.local.server``) applies
this patch; ``tests/functional/local/test_glue_emulation.py`` checks it through the server.

The check and the update are one step because the server runs one request at a time
(``pipeline.local.server.one_request_at_a_time``); no other request can slip between them.
"""

from __future__ import annotations

from typing import Any, Final

CONCURRENT_UPDATE: Final = "Update table failed due to concurrent modifications."


def apply() -> None:
    """Patch moto's Glue in this process (idempotent)."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import EmptyResult
    from moto.glue.models import GlueBackend
    from moto.glue.responses import GlueResponse

    if getattr(GlueBackend.update_table, "checks_version", False):
        return
    update_table = GlueBackend.update_table

    def checked_update_table(
        self: Any,
        database_name: str,
        table_name: str,
        table_input: dict[str, Any],
        version_id: str | None = None,
    ) -> None:
        # Without a VersionId Glue updates unconditionally, and so does this.
        if version_id is not None:
            current = self.get_table(database_name, table_name).as_dict()["VersionId"]
            if version_id != current:
                raise JsonRESTError("ConcurrentModificationException", CONCURRENT_UPDATE)
        update_table(self, database_name, table_name, table_input)

    def update_table_response(self: Any) -> Any:
        table_input = self._get_param("TableInput")
        self.glue_backend.update_table(
            self._get_param("DatabaseName"),
            table_input.get("Name"),
            table_input,
            version_id=self._get_param("VersionId"),
        )
        return EmptyResult()

    checked_update_table.checks_version = True  # type: ignore[attr-defined]
    GlueBackend.update_table = checked_update_table  # type: ignore[method-assign]
    GlueResponse.update_table = update_table_response  # type: ignore[method-assign]
