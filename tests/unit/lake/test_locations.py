"""The locations reference: defaults, the curated table, and the errors a bad row gets."""

from __future__ import annotations

import importlib.util
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import TerminalError
from pipeline.glue_args import parse_glue_args
from pipeline.lake.locations import (
    LOCATIONS_PREFIX,
    Location,
    LocationDefaults,
    Locations,
    load_locations,
)

REPO = Path(__file__).resolve().parents[3]


class FakeStore:
    """In-memory objects with the two calls loading makes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def list(self, bucket: str, prefix: str) -> list[Any]:
        return [_Obj(k) for k in sorted(self.objects) if k.startswith(prefix)]

    def get(self, bucket: str, key: str) -> bytes | None:
        return self.objects.get(key)


class _Obj:
    def __init__(self, key: str) -> None:
        self.key = key


def test_given_no_table_when_loaded_then_every_location_gets_the_defaults() -> None:
    locations = load_locations(FakeStore({}), "curated")

    assert locations.get("ANY") == Location("ANY", "UTC", "US", None)
    assert locations.all_utc


def test_given_job_arguments_when_defaults_built_then_empty_subdivision_is_none() -> None:
    defaults = LocationDefaults.from_job_arguments(
        {"default_time_zone": "Europe/Berlin", "default_country": "de", "default_subdivision": ""}
    )

    assert defaults == LocationDefaults("Europe/Berlin", "DE", None)


def test_given_csv_and_parquet_tables_when_loaded_then_rows_override_the_defaults() -> None:
    parquet = io.BytesIO()
    pq.write_table(pa.table({"location_id": ["TOKYO"], "time_zone": ["Asia/Tokyo"]}), parquet)
    store = FakeStore(
        {
            LOCATIONS_PREFIX + "a.csv": (
                b"location_id,time_zone,country,subdivision\n"
                b"LA,America/Los_Angeles,US,CA\n"
                b"BER,,DE,\n"
            ),
            LOCATIONS_PREFIX + "b.parquet": parquet.getvalue(),
            LOCATIONS_PREFIX + "README.txt": b"ignored",
        }
    )

    locations = load_locations(store, "curated", LocationDefaults("Europe/Berlin", "DE", "BE"))

    assert locations.get("LA") == Location("LA", "America/Los_Angeles", "US", "CA")
    assert locations.get("BER") == Location("BER", "Europe/Berlin", "DE", "BE")
    assert locations.get("TOKYO") == Location("TOKYO", "Asia/Tokyo", "DE", "BE")
    assert locations.get("OTHER") == Location("OTHER", "Europe/Berlin", "DE", "BE")
    assert not locations.all_utc


def test_given_an_unknown_default_zone_when_built_then_terminal_error_says_so() -> None:
    with pytest.raises(TerminalError, match="unknown time zone 'Europe/Atlantis'"):
        LocationDefaults(time_zone="Europe/Atlantis")


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            b"location_id,time_zone\nLA,America/Los_Angles\n",
            "s3://curated/reference/locations/x.csv row 1 (LA): unknown time zone "
            "'America/Los_Angles'",
        ),
        (
            b"location_id,time_zone\nLA,UTC\nLA,Asia/Tokyo\n",
            "s3://curated/reference/locations/x.csv row 2: location 'LA' is listed twice",
        ),
        (
            b"location_id,country\nLA,United States\n",
            "s3://curated/reference/locations/x.csv row 1: country must be an ISO 3166 code",
        ),
        (b"store,time_zone\nLA,UTC\n", "has no location_id column"),
        (b"location_id,time_zone\n,UTC\n", "row 1: location_id is missing"),
    ],
)
def test_given_a_bad_row_when_loaded_then_it_is_skipped_naming_object_and_row(
    csv: bytes, message: str
) -> None:
    good = b"location_id,time_zone\nTOKYO,Asia/Tokyo\n"
    store = FakeStore({LOCATIONS_PREFIX + "x.csv": csv, LOCATIONS_PREFIX + "y.csv": good})

    locations = load_locations(store, "curated")

    (skipped,) = locations.skipped
    assert message in skipped
    # The other objects still count.
    assert locations.time_zone("TOKYO") == "Asia/Tokyo"


def test_given_a_row_with_an_unknown_zone_when_skipped_then_its_location_takes_the_defaults() -> (
    None
):
    store = FakeStore({LOCATIONS_PREFIX + "x.csv": b"location_id,time_zone\nLA,Mars/Base\n"})

    locations = load_locations(store, "curated", LocationDefaults("Europe/Berlin", "DE"))

    assert locations.get("LA") == Location("LA", "Europe/Berlin", "DE", None)


def test_given_a_store_west_of_utc_when_asked_its_day_then_it_is_its_local_day() -> None:
    locations = Locations(rows={"LA": Location("LA", "America/Los_Angeles")})
    now = datetime(2024, 3, 2, 1, 0, tzinfo=UTC)  # 17:00 on 1 March in Los Angeles

    assert locations.today("LA", now) == date(2024, 3, 1)
    assert locations.today("ELSEWHERE", now) == date(2024, 3, 2)


@pytest.mark.parametrize(
    ("script", "required"),
    [
        ("compact_sales", ["--raw_bucket", "r", "--curated_bucket", "c", "--database", "d"]),
        ("forecast_demand", ["--curated_bucket", "c", "--database", "d", "--forecast_table", "t"]),
    ],
)
def test_given_an_unknown_default_time_zone_when_a_job_starts_then_it_is_a_usage_error(
    script: str, required: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location(script, REPO / "glue_jobs" / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    status = module.main([*required, "--default_time_zone", "US/Nowhere"])

    assert status == 2
    assert capsys.readouterr().err.startswith("unknown time zone 'US/Nowhere'")


def test_given_the_job_arguments_when_read_then_empty_values_take_the_defaults() -> None:
    # The template passes --default_subdivision "" when DefaultSubdivision is left empty.
    options = parse_glue_args(["--default_time_zone", "Asia/Tokyo", "--default_subdivision", ""])

    assert LocationDefaults.from_job_arguments(options) == LocationDefaults("Asia/Tokyo")
