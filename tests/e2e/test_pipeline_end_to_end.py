"""The whole pipeline on the emulator: producer to API, every stage real."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.contracts import validate_event
from pipeline.demo import run_demo
from pipeline.errors import RejectedRecord
from pipeline.local.gateway import LocalGateway
from pipeline.local.glue_runtime import run_glue_job
from pipeline.local.invoke import load_handler
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack
from pipeline.local.users import create_user, id_token
from pipeline.query import run_query
from pipeline.synth import SynthConfig, generate_events

pytestmark = pytest.mark.slow

NINETY_DAYS_S = 90 * 24 * 3600


@pytest.fixture(scope="module")
def demo_run(emulator_url, tmp_path_factory):
    """One demo run on its own stack, shared by the assertions below (it is the slow part)."""
    stack = LocalStack.create(emulator_url, stack_name=f"e2e{uuid.uuid4().hex[:8]}")
    started = datetime.now(UTC)
    report = run_demo(
        stack,
        out_dir=tmp_path_factory.mktemp("demo"),
        weeks=4,
        n_skus=4,
        n_locations=2,
        live_events=300,
        seed=11,
    )
    RUN_WINDOW[stack.stack_name] = (started, datetime.now(UTC))
    return stack, report


#: When each stack's demo started and ended (what the run's own time must fall within).
RUN_WINDOW: dict[str, tuple[datetime, datetime]] = {}


def _expected_valid_ids(seed: int) -> set[str]:
    """The demo's own events regenerated (the generator is deterministic for a seed)."""
    today = datetime.now(UTC).date()
    ids = set()
    for event in generate_events(
        SynthConfig(
            seed=seed,
            n_skus=4,
            n_locations=2,
            start=today - timedelta(days=28),
            days=28,
            duplicate_rate=0.01,
            late_rate=0.01,
        )
    ):
        try:
            validate_event(event)
        except RejectedRecord:
            continue
        ids.add(event["event_id"])
    return ids


def test_given_the_demo_when_run_then_every_valid_event_is_curated_exactly_once(demo_run):
    stack, report = demo_run
    history_ids = _expected_valid_ids(11)
    curated = run_query(
        "SELECT event_id, count(*) AS n FROM sales GROUP BY event_id",
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        session=stack.session(),
    )
    counts = dict(zip(curated["event_id"], curated["n"], strict=True))
    assert set(counts.values()) == {1}
    # The live events' ids are not reproducible (their times are "now"), so count them.
    assert history_ids <= set(counts)
    assert len(counts) == len(history_ids) + 300
    assert report.quarantined == report.poison_produced == 4
    assert report.curated_rows == len(counts)


def test_given_the_demo_when_run_then_forecasts_have_contract_keys_numbers_and_ttl(demo_run):
    stack, report = demo_run
    table = stack.session().resource("dynamodb").Table(stack.ref("ForecastTable"))
    items = table.scan()["Items"]
    assert len(items) == report.forecast_items == 4 * 2 * 28
    # One forecast run wrote them all; its time, within the demo's, dates their expiry.
    ((run_id, generated_at),) = {(i["run_id"], i["generated_at"]) for i in items}
    run_at = datetime.fromisoformat(generated_at)
    started, finished = RUN_WINDOW[stack.stack_name]
    assert run_id and started <= run_at <= finished
    for item in items:
        assert item["PK"].startswith("SKU#")
        loc, _, day = item["SK"].removeprefix("LOC#").partition("#DATE#")
        assert loc and date.fromisoformat(day)
        for field in ("forecast_val", "confidence_lower", "confidence_upper"):
            assert isinstance(item[field], Decimal)
        assert item["confidence_lower"] <= item["forecast_val"] <= item["confidence_upper"]
        assert int(item["ttl"]) == int(run_at.timestamp()) + NINETY_DAYS_S


def test_given_forecasts_when_called_through_the_gateway_then_viewer_reads_and_anonymous_is_refused(
    demo_run,
):
    stack, _ = demo_run
    item = (
        stack.session()
        .resource("dynamodb")
        .Table(stack.ref("ForecastTable"))
        .scan(Limit=1)["Items"][0]
    )
    sku = item["PK"].removeprefix("SKU#")
    location, _, day = item["SK"].removeprefix("LOC#").partition("#DATE#")
    create_user(stack, "e2e-viewer", groups=["ViewerGroup"])
    token = id_token(stack, "e2e-viewer")
    url_query = f"sku_id={sku}&location_id={location}&from={day}&to={day}"
    with LocalGateway(stack, load_handler(stack, "GetForecastFunction")) as gateway:
        url = f"{gateway.url}/forecasts?{url_query}"
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={"Authorization": token}), timeout=30
        ) as response:
            body = json.loads(response.read())
        assert response.status == 200
        assert [(i["sku_id"], i["location_id"], i["date"]) for i in body["items"]] == [
            (sku, location, day)
        ]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=30)
        assert refused.value.code == 401


def test_given_the_demo_then_its_curated_tables_are_iceberg_and_each_event_is_in_its_day_once(
    demo_run, tmp_path
):
    stack, report = demo_run
    glue = stack.session().client("glue")
    curated = stack.ref("CuratedBucket")
    for name in ("sales", "daily_demand", "forecasts"):
        parameters = glue.get_table(DatabaseName=stack.ref("LakeDatabase"), Name=name)["Table"][
            "Parameters"
        ]
        assert parameters["table_type"] == "ICEBERG"
        assert parameters["metadata_location"].startswith(f"s3://{curated}/{name}/metadata/")

    # A re-run of the compaction job changes nothing.
    again = run_glue_job(stack, "CompactSalesJob")
    stack.save(tmp_path / "local.json")
    result = CliRunner().invoke(
        app,
        ["query", "--format", "csv",
         "SELECT event_id, event_time, year, month, day FROM sales ORDER BY event_id"],
        env={STATE_DIR_VARIABLE: str(tmp_path)},
        prog_name="fmcg",
    )  # fmt: skip

    assert again["rows_written"] == 0
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)) == report.curated_rows
    assert _expected_valid_ids(11) <= set(ids)
    for row in rows:
        day = datetime.fromisoformat(row["event_time"]).date()
        assert (row["year"], row["month"], row["day"]) == (f"{day:%Y}", f"{day:%m}", f"{day:%d}"), (
            row
        )
