"""The curated Iceberg tables in infra/template.yaml: jobs, their catalog access, optimizers.

The jobs create the tables (pipeline/lake/tables.py), so the template declares none; it
declares Glue's three optimizers per table behind ``EnableTableOptimizers``, with one role
scoped to those tables.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.lake.tables import TABLES
from tests.support.template_policies import as_list, resources_of, role_statements

CURATED = sorted(spec.name for spec in TABLES)
OPTIMIZER_TYPES = {"compaction", "retention", "orphan_file_deletion"}
GLUE_ARN = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"


def _glue_grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Glue action -> the tables (``table/<db>/<name>`` suffixes) it is allowed on."""
    grants: dict[str, set[str]] = {}
    for s in statements:
        for action in as_list(s["Action"]):
            if not action.startswith("glue:"):
                continue
            for resource in as_list(s["Resource"]):
                arn = resource["Fn::Sub"]
                if arn.startswith(f"{GLUE_ARN}:table/"):
                    grants.setdefault(action, set()).add(arn.rsplit("/", 1)[1])
    return grants


def _job_role(template: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    role = template["Resources"][job_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_statements(template, role)


def test_given_the_template_then_it_declares_no_glue_table(cfn_template: dict[str, Any]) -> None:
    assert resources_of(cfn_template, "AWS::Glue::Table") == {}


@pytest.mark.parametrize("job_id", ["CompactSalesJob", "ForecastDemandJob"])
def test_given_a_glue_job_then_it_runs_alone_with_iceberg_on_its_class_path(
    cfn_template: dict[str, Any], job_id: str
) -> None:
    job = cfn_template["Resources"][job_id]["Properties"]
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert job["DefaultArguments"]["--datalake-formats"] == "iceberg"


def test_given_the_compaction_role_then_it_commits_to_sales_and_daily_demand_only(
    cfn_template: dict[str, Any],
) -> None:
    grants = _glue_grants(_job_role(cfn_template, "CompactSalesJob"))
    # demand_history is only read: its rows are laid over the demand days a run rebuilds.
    assert grants == {
        "glue:GetDatabase": {"sales", "daily_demand", "demand_history"},
        "glue:GetTable": {"sales", "daily_demand", "demand_history"},
        "glue:CreateTable": {"sales", "daily_demand"},
        "glue:UpdateTable": {"sales", "daily_demand"},
    }


def test_given_the_import_role_then_it_reads_sales_and_commits_to_the_demand_tables(
    cfn_template: dict[str, Any],
) -> None:
    grants = _glue_grants(_job_role(cfn_template, "ImportHistoryJob"))
    assert grants == {
        "glue:GetDatabase": {"sales", "daily_demand", "demand_history"},
        "glue:GetTable": {"sales", "daily_demand", "demand_history"},
        "glue:CreateTable": {"daily_demand", "demand_history"},
        "glue:UpdateTable": {"daily_demand", "demand_history"},
    }


def test_given_the_import_job_then_it_runs_alone_on_the_templates_engine(
    cfn_template: dict[str, Any],
) -> None:
    job = cfn_template["Resources"]["ImportHistoryJob"]["Properties"]
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    # The same engine choice and Iceberg jars as the other Spark-capable jobs.
    assert job["DefaultArguments"]["--engine"] == {"Ref": "JobEngine"}
    assert job["DefaultArguments"]["--datalake-formats"] == "iceberg"
    assert job["Command"]["ScriptLocation"] == {
        "Fn::Sub": "s3://${ArtifactsBucket}/glue/import_history.py"
    }


def test_given_the_forecast_role_then_it_reads_daily_demand_and_commits_to_forecasts(
    cfn_template: dict[str, Any],
) -> None:
    grants = _glue_grants(_job_role(cfn_template, "ForecastDemandJob"))
    assert grants == {
        "glue:GetDatabase": {"daily_demand", "forecasts"},
        "glue:GetTable": {"daily_demand", "forecasts"},
        "glue:CreateTable": {"forecasts"},
        "glue:UpdateTable": {"forecasts"},
    }


def test_given_the_optimizers_then_each_table_has_all_three_behind_the_switch(
    sam_template: dict[str, Any],
) -> None:
    optimizers = resources_of(sam_template, "AWS::Glue::TableOptimizer").values()
    declared = sorted((o["Properties"]["TableName"], o["Properties"]["Type"]) for o in optimizers)
    assert declared == sorted((t, kind) for t in CURATED for kind in OPTIMIZER_TYPES)
    for optimizer in optimizers:
        config = optimizer["Properties"]["TableOptimizerConfiguration"]
        assert optimizer["Condition"] == "TableOptimizersEnabled"
        assert config["RoleArn"] == {"Fn::GetAtt": ["TableOptimizerRole", "Arn"]}
        assert config["Enabled"] is True
    switch = sam_template["Parameters"]["EnableTableOptimizers"]
    assert (switch["Default"], sam_template["Resources"]["TableOptimizerRole"]["Condition"]) == (
        "false",
        "TableOptimizersEnabled",
    )


def test_given_the_optimizer_role_then_it_reaches_the_curated_tables_and_their_logs_only(
    cfn_template: dict[str, Any],
) -> None:
    statements = role_statements(cfn_template, "TableOptimizerRole")
    objects = {
        r["Fn::Sub"]
        for s in statements
        if "s3:DeleteObject" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    logs = {
        r["Fn::Sub"].split("log-group:")[1]
        for s in statements
        if any(a.startswith("logs:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
    }
    actions = {a for s in statements for a in as_list(s["Action"])}

    assert objects == {f"${{CuratedBucket.Arn}}/{t}/*" for t in CURATED}
    assert set(listing["Condition"]["StringLike"]["s3:prefix"]) == {
        p for t in CURATED for p in (t, f"{t}/*")
    }
    assert _glue_grants(statements) == {
        "glue:GetTable": set(CURATED),
        "glue:UpdateTable": set(CURATED),
    }
    assert logs == {
        f"/aws-glue/iceberg-{kind}/logs:*"
        for kind in ("compaction", "retention", "orphan-file-deletion")
    }
    assert actions == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "glue:GetTable",
        "glue:UpdateTable",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_given_the_retention_optimizers_then_they_keep_the_parameters_days_of_snapshots(
    sam_template: dict[str, Any],
) -> None:
    retention = [
        o["Properties"]["TableOptimizerConfiguration"]["RetentionConfiguration"]
        for o in resources_of(sam_template, "AWS::Glue::TableOptimizer").values()
        if o["Properties"]["Type"] == "retention"
    ]
    assert len(retention) == len(CURATED)
    for config in retention:
        iceberg = config["IcebergConfiguration"]
        assert iceberg["SnapshotRetentionPeriodInDays"] == {"Ref": "SnapshotRetentionDays"}
        assert iceberg["CleanExpiredFiles"] is True
