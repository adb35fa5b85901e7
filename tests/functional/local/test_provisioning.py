"""Provisioning the emulator from infra/template.yaml, and only from it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipeline.local.kcl import LEASE_OWNER_INDEX, application_name, leases, seed_leases
from pipeline.local.stack import LocalStack
from pipeline.local.template import DEFAULT_TEMPLATE

REPO = Path(__file__).resolve().parents[3]


def test_given_template_when_provisioned_then_every_declared_resource_exists(stack) -> None:
    session = stack.session()
    stream = session.client("kinesis").describe_stream_summary(StreamName=stack.ref("SalesStream"))[
        "StreamDescriptionSummary"
    ]
    assert stream["OpenShardCount"] == int(stack.parameters["ShardCount"])
    buckets = {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}
    assert {stack.ref("RawBucket"), stack.ref("CuratedBucket")} <= buckets
    ddb = session.client("dynamodb")
    table = ddb.describe_table(TableName=stack.ref("ForecastTable"))["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]
    ttl = ddb.describe_time_to_live(TableName=stack.ref("ForecastTable"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
    glue = session.client("glue")
    assert glue.get_database(Name=stack.ref("LakeDatabase"))["Database"]["Name"]
    for job in ("CompactSalesJob", "ForecastDemandJob", "ImportHistoryJob"):
        spec = glue.get_job(JobName=stack.ref(job))["Job"]
        assert spec["ExecutionProperty"] == {"MaxConcurrentRuns": 1}, job
    groups = session.client("cognito-idp").list_groups(UserPoolId=stack.ref("UserPool"))
    assert {g["GroupName"] for g in groups["Groups"]} >= {
        "AdminGroup",
        "PlannerGroup",
        "ViewerGroup",
    }
    failed = stack.ref("FailedBatchesBucket")
    assert failed in buckets
    s3 = session.client("s3")
    block = s3.get_public_access_block(Bucket=failed)["PublicAccessBlockConfiguration"]
    assert set(block.values()) == {True}
    rules = s3.get_bucket_encryption(Bucket=failed)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # The template's retention (a parameter, 7 days by default), not the 24 h Kinesis default.
    assert stream["RetentionPeriodHours"] == int(stack.parameters["StreamRetentionHours"]) == 168


def test_given_a_renamed_resource_in_a_template_copy_when_provisioned_then_the_name_follows(
    emulator_url: str, tmp_path: Path
) -> None:
    original = DEFAULT_TEMPLATE.read_text()
    assert 'Name: !Sub "${AWS::StackName}-sales"' in original
    renamed = original.replace(
        'Name: !Sub "${AWS::StackName}-sales"', 'Name: !Sub "${AWS::StackName}-till-rolls"'
    ).replace(
        'TableName: !Sub "${AWS::StackName}-forecasts"',
        'TableName: !Sub "${AWS::StackName}-demand-plan"',
    )
    copy = tmp_path / "infra" / "template.yaml"
    copy.parent.mkdir()
    copy.write_text(renamed)
    name = f"r{uuid.uuid4().hex[:8]}"

    stack = LocalStack.create(emulator_url, stack_name=name, template_path=copy)

    assert stack.ref("SalesStream") == f"{name}-till-rolls"
    assert stack.ref("ForecastTable") == f"{name}-demand-plan"
    kinesis = stack.session().client("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=f"{name}-till-rolls")
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_stream_summary(StreamName=f"{name}-sales")
    assert stack.names()["FORECAST_TABLE"] == f"{name}-demand-plan"


def test_given_a_parameter_override_when_provisioned_then_it_is_honoured(emulator_url) -> None:
    stack = LocalStack.create(
        emulator_url, stack_name=f"p{uuid.uuid4().hex[:8]}", parameters={"ShardCount": 1}
    )
    shards = stack.session().client("kinesis").list_shards(StreamName=stack.ref("SalesStream"))
    assert len(shards["Shards"]) == 1


def test_given_function_env_in_template_then_local_values_are_the_provisioned_names(stack) -> None:
    env = stack.function_environment("IngestStreamFunction")
    assert env["RAW_BUCKET"] == stack.ref("RawBucket")
    assert stack.function_environment("GetForecastFunction")["FORECAST_TABLE"] == stack.ref(
        "ForecastTable"
    )


def test_given_state_file_when_saved_and_loaded_then_stack_round_trips(stack, tmp_path) -> None:
    path = tmp_path / "local.json"
    stack.save(path)
    loaded = LocalStack.load(path)
    assert loaded.names() == stack.names()
    assert json.loads(path.read_text())["endpoint_url"] == stack.endpoint_url


def test_given_cli_when_up_status_down_then_exports_and_cleans_up(tmp_path) -> None:
    env = {"FMCG_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    fmcg = [sys.executable, "-m", "pipeline.cli.main"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*fmcg, *args],
            check=False,
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    state = tmp_path / "state"
    try:
        assert run("local", "up").returncode == 0
        # Private state: only its owner can read what every command trusts.
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert stat.S_IMODE((state / "local.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "emulator.log").stat().st_mode) == 0o600
        pid = json.loads((state / "local.json").read_text())["pid"]
        status = run("local", "status")
        assert status.returncode == 0, status.stderr
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in status.stdout.splitlines()
        )
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert exports["SALES_STREAM_NAME"] == "fmcg-sales"
        assert exports["RAW_BUCKET"] == "fmcg-raw-123456789012-us-east-1"
    finally:
        down = run("local", "down")
    assert down.returncode == 0
    assert down.stderr.startswith("down http://127.0.0.1:"), down.stderr  # it was signalled
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    after = run("local", "status")
    assert after.returncode == 1
    assert "no local stack" in after.stderr


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


def test_given_the_template_when_provisioned_then_tables_and_pool_refuse_deletion(stack) -> None:
    session = stack.session()
    ddb = session.client("dynamodb")
    for table in (
        "ForecastTable",
        "OrdersTable",
        "InventoryStateTable",
        "KclLeaseTable",
        "KclCoordinatorStateTable",
        "KclWorkerMetricStatsTable",
    ):
        name = stack.ref(table)
        assert ddb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"] is True
        with pytest.raises(ddb.exceptions.ClientError) as refused:
            ddb.delete_table(TableName=name)
        assert refused.value.response["Error"]["Code"] == "ValidationException", table
    pool = session.client("cognito-idp").describe_user_pool(UserPoolId=stack.ref("UserPool"))
    assert pool["UserPool"]["DeletionProtection"] == "ACTIVE"


def test_given_the_kcl_tables_when_provisioned_then_the_worker_finds_them_under_its_names(
    stack,
) -> None:
    session = stack.session()
    ddb = session.client("dynamodb")
    app = application_name(stack.stack_name)
    kcl_tables = ("KclLeaseTable", "KclCoordinatorStateTable", "KclWorkerMetricStatsTable")
    names = {stack.ref(t) for t in kcl_tables}

    assert names == {app, f"{app}-CoordinatorState", f"{app}-WorkerMetricStats"}
    for name in names:
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        assert pitr == "ENABLED", name
    (index,) = ddb.describe_table(TableName=app)["Table"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == LEASE_OWNER_INDEX


def test_given_the_provisioned_lease_table_when_seeded_twice_then_one_lease_per_shard_once(
    emulator_url: str,
) -> None:
    stack = LocalStack.create(emulator_url, stack_name=f"l{uuid.uuid4().hex[:8]}")
    session = stack.session()
    table = application_name(stack.stack_name)
    stream = stack.ref("SalesStream")

    first = seed_leases(session, stream, table)
    again = seed_leases(session, stream, table)

    shards = int(stack.parameters["ShardCount"])
    assert (first, again) == (shards, 0)
    assert [lease.owner for lease in leases(session, table).values()] == [None] * shards


def test_given_template_when_provisioned_then_the_curated_tables_are_left_to_the_jobs(
    stack: LocalStack,
) -> None:
    # The jobs create the Iceberg tables on their first run; optimizers have no local twin.
    glue = stack.session().client("glue")
    tables = glue.get_tables(DatabaseName=stack.ref("LakeDatabase"))["TableList"]
    optimizers = {
        lid: r.emulated
        for lid, r in stack.resources.items()
        if r.type == "AWS::Glue::TableOptimizer"
    }

    assert tables == []
    assert len(optimizers) == 9
    assert set(optimizers.values()) == {False}
