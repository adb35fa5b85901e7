"""Athena through the emulator with the locked botocore, whatever protocol it speaks.

botocore 1.44.14 moved Athena to REST-JSON (``POST /workgroups``), which moto does not route;
``pipeline.local.emulator_patches.route_athena_rest_json`` routes it. Every call here goes over
HTTP to the emulator server, as the pipeline's do.
"""

from __future__ import annotations

import uuid
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from pipeline.local.emulator import aws_session


@pytest.fixture
def athena(emulator_url: str) -> Any:
    return aws_session(emulator_url).client("athena")


def test_given_the_locked_botocore_then_it_is_the_protocol_the_patch_exists_for(
    athena: Any,
) -> None:
    # If a later lock goes back to JSON-RPC the patch is idle, and this says so.
    assert athena.meta.service_model.protocol == "rest-json", botocore.__version__


def test_given_a_new_workgroup_when_created_then_get_and_list_find_it(athena: Any) -> None:
    name = f"wg-{uuid.uuid4().hex[:8]}"
    athena.create_work_group(
        Name=name,
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/athena/"}},
        Description="functional test",
    )

    got = athena.get_work_group(WorkGroup=name)["WorkGroup"]
    listed = athena.list_work_groups(MaxResults=50)["WorkGroups"]

    assert got["Name"] == name
    assert got["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://results/athena/"
    assert name in {w["Name"] for w in listed}


def test_given_a_workgroup_when_a_query_starts_then_its_execution_is_found_by_id(
    athena: Any,
) -> None:
    name = f"wg-{uuid.uuid4().hex[:8]}"
    athena.create_work_group(
        Name=name, Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/q/"}}
    )

    started = athena.start_query_execution(
        QueryString="SELECT 1", WorkGroup=name, QueryExecutionContext={"Database": "lake"}
    )
    execution = athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])

    assert execution["QueryExecution"]["Query"] == "SELECT 1"
    assert execution["QueryExecution"]["WorkGroup"] == name
    assert execution["QueryExecution"]["QueryExecutionContext"] == {"Database": "lake"}


def test_given_an_existing_workgroup_when_created_again_then_the_error_code_reaches_the_client(
    athena: Any,
) -> None:
    name = f"wg-{uuid.uuid4().hex[:8]}"
    athena.create_work_group(Name=name)

    with pytest.raises(ClientError) as raised:
        athena.create_work_group(Name=name)

    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
