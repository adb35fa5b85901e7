"""Glue's optimistic locking through the emulator (``pipeline.local.glue_patches``).

Every call goes over HTTP to the emulator server, as the pipeline's do. The PyIceberg tests
make a commit race another between its ``GetTable`` and its ``UpdateTable`` (a botocore
``before-call`` hook on the second writer's Glue client runs the first writer's commit): on
plain moto the second ``UpdateTable`` lands on the stale version and the first writer's rows
are silently gone.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from pyiceberg.exceptions import CommitFailedException

from pipeline.lake.tables import (
    FORECASTS,
    FORECASTS_SCHEMA,
    TABLE_PROPERTIES,
    iceberg_catalog,
    table_location,
    with_partition_columns,
)
from pipeline.local.emulator import aws_session
from pipeline.local.glue_patches import CONCURRENT_UPDATE

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


@pytest.fixture
def glue(emulator_url: str) -> Any:
    return aws_session(emulator_url).client("glue")


@pytest.fixture
def lake(emulator_url: str, glue: Any) -> tuple[str, str]:
    """A fresh Glue database and curated bucket: ``(database, bucket)``."""
    suffix = uuid.uuid4().hex[:10]
    database, bucket = f"lake_{suffix}", f"curated-{suffix}"
    glue.create_database(DatabaseInput={"Name": database})
    aws_session(emulator_url).client("s3").create_bucket(Bucket=bucket)
    return database, bucket


def _plain_table(glue: Any, database: str) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    glue.create_table(DatabaseName=database, TableInput={"Name": name, "Parameters": {"n": "0"}})
    return name


def _update(glue: Any, database: str, name: str, n: int, **version: str) -> None:
    glue.update_table(
        DatabaseName=database, TableInput={"Name": name, "Parameters": {"n": str(n)}}, **version
    )


def _version(glue: Any, database: str, name: str) -> str:
    return str(glue.get_table(DatabaseName=database, Name=name)["Table"]["VersionId"])


def test_given_the_current_version_when_a_table_is_updated_then_its_version_id_increments(
    glue: Any, lake: tuple[str, str]
) -> None:
    database, _ = lake
    name = _plain_table(glue, database)
    read = _version(glue, database, name)

    _update(glue, database, name, 1, VersionId=read)

    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    assert table["Parameters"] == {"n": "1"}
    assert int(table["VersionId"]) == int(read) + 1


def test_given_a_stale_version_when_a_table_is_updated_then_glue_refuses_it_unchanged(
    glue: Any, lake: tuple[str, str]
) -> None:
    database, _ = lake
    name = _plain_table(glue, database)
    stale = _version(glue, database, name)
    _update(glue, database, name, 1, VersionId=stale)

    with pytest.raises(ClientError) as raised:
        _update(glue, database, name, 2, VersionId=stale)

    error = raised.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ConcurrentModificationException",
        CONCURRENT_UPDATE,
    )
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    assert table["Parameters"] == {"n": "1"}
    assert int(table["VersionId"]) == int(stale) + 1


def test_given_no_version_when_a_table_is_updated_then_it_is_updated_unconditionally(
    glue: Any, lake: tuple[str, str]
) -> None:
    database, _ = lake
    name = _plain_table(glue, database)
    _update(glue, database, name, 1)

    _update(glue, database, name, 2)

    assert glue.get_table(DatabaseName=database, Name=name)["Table"]["Parameters"] == {"n": "2"}


def _forecast_rows(model: str) -> pa.Table:
    row = {
        "sku_id": "SKU-1",
        "location_id": "LOC-1",
        "date": date(2026, 12, 7),
        "forecast_val": 1.0,
        "confidence_lower": 0.5,
        "confidence_upper": 1.5,
        "lower_95": 0.0,
        "upper_95": 2.0,
        "model": model,
        "generated_at": datetime(2026, 12, 6, 12),
    }
    return with_partition_columns(pa.Table.from_pylist([row], FORECASTS_SCHEMA), FORECASTS)


def _writers(emulator_url: str, lake: tuple[str, str], **properties: str) -> tuple[Table, Table]:
    """A forecasts table loaded by two writers with their own sessions, at one snapshot.

    Unpartitioned: Glue's locking does not look at the partition spec.
    """
    database, bucket = lake
    first = iceberg_catalog(aws_session(emulator_url)).create_table(
        (database, FORECASTS.name),
        FORECASTS.schema,
        location=table_location(bucket, FORECASTS.name),
        properties=TABLE_PROPERTIES,
    )
    if properties:
        first.transaction().set_properties(properties).commit_transaction()
    second_catalog: Catalog = iceberg_catalog(aws_session(emulator_url))
    first = first.refresh()
    return first, second_catalog.load_table((database, FORECASTS.name))


def _before_first_update(table: Table, race: Callable[[], None]) -> None:
    """Run ``race`` once, when ``table``'s catalog is about to send its first UpdateTable."""
    raced: list[bool] = []

    def hook(**_: Any) -> None:
        if not raced:
            raced.append(True)
            race()

    table.catalog.glue.meta.events.register("before-call.glue.UpdateTable", hook)  # type: ignore[attr-defined]


def _models(table: Table) -> list[str]:
    return sorted(table.refresh().scan().to_arrow().column("model").to_pylist())


def test_given_retries_off_when_a_commit_races_another_then_it_fails_and_a_reload_keeps_both(
    emulator_url: str, lake: tuple[str, str]
) -> None:
    # PyIceberg retries a failed append itself; with that off the conflict reaches the caller.
    first, second = _writers(emulator_url, lake, **{"commit.retry.num-retries": "0"})
    _before_first_update(second, lambda: first.append(_forecast_rows("first")))

    with pytest.raises(CommitFailedException, match="Glue detected concurrent update"):
        second.append(_forecast_rows("second"))
    second.refresh().append(_forecast_rows("second"))

    assert _models(second) == ["first", "second"]


def test_given_default_retries_when_a_commit_races_another_then_pyiceberg_retries_and_keeps_both(
    emulator_url: str, lake: tuple[str, str]
) -> None:
    first, second = _writers(emulator_url, lake)
    _before_first_update(second, lambda: first.append(_forecast_rows("first")))

    second.append(_forecast_rows("second"))

    assert _models(second) == ["first", "second"]
    assert len(second.metadata.snapshots) == 2
