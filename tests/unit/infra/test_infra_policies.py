"""Security and observability policy of infra/template.yaml, on the SAM-transformed template.

The assertions of issue 8: no wildcard actions, the GetForecast role has no S3, sg-db only
from sg-lambda on 5432, every bucket blocked/encrypted/TLS-only, TTL on Forecasts, X-Ray on.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.api.forecasts import NUMBERS
from pipeline.lake.layout import BY_DATE_INDEX, DATE_SORT_KEY
from tests.support.template_policies import (
    DATA_SERVICES,
    all_policy_statements,
    as_list,
    resources_of,
    role_statements,
    wildcard_actions,
)


def function_role_id(template: dict[str, Any], function_id: str) -> str:
    role = template["Resources"][function_id]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function_id}: role {role}"
    return str(role["Fn::GetAtt"][0])


# ---------------------------------------------------------------- the helpers can fail


def test_given_broad_allow_statements_when_checked_then_each_wildcard_is_reported() -> None:
    assert wildcard_actions({"Effect": "Allow", "Action": ["s3:*", "dynamodb:GetItem"]}) == ["s3:*"]
    assert wildcard_actions({"Effect": "Allow", "Action": "*"}) == ["*"]
    assert wildcard_actions({"Effect": "Allow", "NotAction": "iam:*"}) == ["NotAction"]
    assert wildcard_actions({"Effect": "Deny", "Action": "s3:*"}) == []


def test_given_a_role_with_an_aws_managed_policy_when_read_then_it_is_rejected() -> None:
    template = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]
                },
            }
        }
    }
    with pytest.raises(AssertionError, match="R attaches a managed policy not in the template"):
        role_statements(template, "R")


# ---------------------------------------------------------------- IAM


def test_given_every_policy_when_read_then_no_allow_has_a_wildcard_action(
    cfn_template: dict[str, Any],
) -> None:
    broad = {
        (lid, a) for lid, s in all_policy_statements(cfn_template) for a in wildcard_actions(s)
    }
    assert broad == set()


def test_given_every_role_when_read_then_only_in_template_managed_policies_are_attached(
    cfn_template: dict[str, Any],
) -> None:
    for role_id in resources_of(cfn_template, "AWS::IAM::Role"):
        role_statements(cfn_template, role_id)  # raises on AdministratorAccess and the like


def test_given_allows_on_data_services_when_read_then_none_has_a_star_resource(
    cfn_template: dict[str, Any],
) -> None:
    offending = [
        (lid, s.get("Sid"))
        for lid, s in all_policy_statements(cfn_template)
        if s.get("Effect") == "Allow"
        and any(a.split(":")[0] in DATA_SERVICES for a in as_list(s["Action"]))
        and "*" in as_list(s.get("Resource"))
    ]
    assert offending == []


def test_given_the_functions_when_read_then_each_has_its_own_role(
    cfn_template: dict[str, Any],
) -> None:
    functions = resources_of(cfn_template, "AWS::Lambda::Function")
    roles = [function_role_id(cfn_template, f) for f in functions]
    assert {"IngestStreamFunction", "GetForecastFunction"} <= set(functions)
    assert len(set(roles)) == len(roles)


def test_given_the_sam_functions_when_read_then_none_has_policies_its_role_would_ignore(
    sam_template: dict[str, Any],
) -> None:
    # With Role set, SAM drops Policies silently: a permission added there would be lost.
    both = [
        lid
        for lid, r in resources_of(sam_template, "AWS::Serverless::Function").items()
        if "Role" in r["Properties"] and "Policies" in r["Properties"]
    ]
    assert both == []


def test_given_the_get_forecast_role_when_read_then_no_s3_and_forecasts_are_read_only(
    cfn_template: dict[str, Any],
) -> None:
    statements = role_statements(
        cfn_template, function_role_id(cfn_template, "GetForecastFunction")
    )
    actions = {a for s in statements for a in as_list(s["Action"])}
    on_forecasts = {
        a
        for s in statements
        if s["Resource"] == {"Fn::GetAtt": ["ForecastTable", "Arn"]}
        for a in as_list(s["Action"])
    }
    assert [a for a in actions if a.startswith("s3:")] == []
    assert on_forecasts == {"dynamodb:GetItem", "dynamodb:Query"}
    assert all(s["Effect"] == "Allow" for s in statements)


def _object_prefixes(statements: list[dict[str, Any]], bucket: str) -> set[str]:
    """The object key patterns the statements allow on ``bucket`` (``${Bucket.Arn}/<p>``)."""
    out = set()
    for s in statements:
        for r in as_list(s["Resource"]):
            sub = r.get("Fn::Sub") if isinstance(r, dict) else None
            if isinstance(sub, str) and sub.startswith(f"${{{bucket}.Arn}}/"):
                out.add(sub.removeprefix(f"${{{bucket}.Arn}}/"))
    return out


def test_given_the_glue_jobs_when_read_then_each_has_a_role_scoped_to_its_own_prefixes(
    cfn_template: dict[str, Any],
) -> None:
    jobs = resources_of(cfn_template, "AWS::Glue::Job")
    roles = {lid: job["Properties"]["Role"]["Fn::GetAtt"][0] for lid, job in jobs.items()}
    compact = role_statements(cfn_template, roles["CompactSalesJob"])
    forecast = role_statements(cfn_template, roles["ForecastDemandJob"])
    imports = role_statements(cfn_template, roles["ImportHistoryJob"])

    assert len(set(roles.values())) == len(roles) == 3
    assert _object_prefixes(compact, "RawBucket") == {"sales/*"}
    assert _object_prefixes(compact, "CuratedBucket") == {
        "sales/*",
        "daily_demand/*",
        "demand_history/*",
        "quarantine/compaction/*",
        "_state/compaction/*",
        "reference/locations/*",
    }
    assert _object_prefixes(forecast, "RawBucket") == set()
    assert _object_prefixes(forecast, "CuratedBucket") == {
        "daily_demand/*",
        "forecasts/*",
        "reference/locations/*",
        "reference/calendar/*",
        "reference/promotions/*",
    }
    assert _object_prefixes(imports, "RawBucket") == set()
    assert _object_prefixes(imports, "CuratedBucket") == {
        "imports/*",
        "sales/*",
        "daily_demand/*",
        "demand_history/*",
        "quarantine/import/*",
        "reference/locations/*",
    }
    # The history files and the streamed sales are only read.
    for s in imports:
        if "imports/*" in str(s.get("Resource")) and "s3:ListBucket" not in str(s["Action"]):
            assert as_list(s["Action"]) == ["s3:GetObject"]
    for statements in (compact, forecast, imports):
        # The locations table and the calendar are reference data: read, never written.
        for s in statements:
            if "reference/" in str(s.get("Resource")):
                assert as_list(s["Action"]) == ["s3:GetObject"]
        assert _object_prefixes(statements, "ArtifactsBucket") == {"glue/*"}
        lists = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
        assert lists and all("s3:prefix" in s["Condition"]["StringLike"] for s in lists)
    assert not any("dynamodb" in str(s["Action"]) for s in compact)
    (put_metric,) = [s for s in forecast if s["Action"] == "cloudwatch:PutMetricData"]
    assert put_metric["Condition"] == {"StringEquals": {"cloudwatch:namespace": "FMCG/Business"}}


# ---------------------------------------------------------------- network


def test_given_sg_db_when_read_then_only_sg_lambda_may_reach_it_on_5432(
    cfn_template: dict[str, Any],
) -> None:
    db = cfn_template["Resources"]["DatabaseSecurityGroup"]["Properties"]
    extra_ingress = [
        lid
        for lid, r in resources_of(cfn_template, "AWS::EC2::SecurityGroupIngress").items()
        if r["Properties"]["GroupId"] == {"Ref": "DatabaseSecurityGroup"}
    ]
    assert db["SecurityGroupIngress"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "SourceSecurityGroupId": {"Ref": "LambdaSecurityGroup"},
            "Description": "PostgreSQL from sg-lambda only",
        }
    ]
    assert extra_ingress == []


def test_given_sg_lambda_when_read_then_egress_is_https_to_aws_and_postgres_to_sg_db(
    cfn_template: dict[str, Any],
) -> None:
    sg = cfn_template["Resources"]["LambdaSecurityGroup"]["Properties"]
    egress = resources_of(cfn_template, "AWS::EC2::SecurityGroupEgress")
    to_groups = {
        (e["Properties"]["FromPort"], e["Properties"]["DestinationSecurityGroupId"]["Ref"])
        for e in egress.values()
        if e["Properties"]["GroupId"] == {"Ref": "LambdaSecurityGroup"}
    }
    assert [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r["DestinationPrefixListId"])
        for r in sg["SecurityGroupEgress"]
    ] == [
        ("tcp", 443, 443, {"Ref": "S3PrefixListId"}),
        ("tcp", 443, 443, {"Ref": "DynamoDbPrefixListId"}),
    ]
    assert to_groups == {(443, "EndpointSecurityGroup"), (5432, "DatabaseSecurityGroup")}
    assert "SecurityGroupIngress" not in sg


def test_given_the_functions_when_read_then_they_run_in_the_private_app_subnets(
    cfn_template: dict[str, Any],
) -> None:
    subnets = cfn_template["Resources"]
    for lid, fn in resources_of(cfn_template, "AWS::Lambda::Function").items():
        vpc = fn["Properties"].get("VpcConfig")
        assert vpc is not None, lid
        assert vpc["SecurityGroupIds"] == [{"Ref": "LambdaSecurityGroup"}], lid
        cidrs = sorted(subnets[s["Ref"]]["Properties"]["CidrBlock"] for s in vpc["SubnetIds"])
        assert cidrs == ["10.0.3.0/24", "10.0.4.0/24"], lid


def test_given_the_vpc_when_read_then_gateway_endpoints_serve_s3_and_dynamodb(
    cfn_template: dict[str, Any],
) -> None:
    endpoints = resources_of(cfn_template, "AWS::EC2::VPCEndpoint").values()
    gateways = {
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
        for e in endpoints
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    }
    assert gateways == {"s3", "dynamodb"}
    assert cfn_template["Resources"]["Vpc"]["Properties"]["CidrBlock"] == "10.0.0.0/16"


# ---------------------------------------------------------------- data at rest and in transit


def _tls_only(template: dict[str, Any], bucket_id: str) -> bool:
    for policy in resources_of(template, "AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] != {"Ref": bucket_id}:
            continue
        for s in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if (
                s["Effect"] == "Deny"
                and s["Principal"] == "*"
                and s["Action"] == "s3:*"
                and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and len(as_list(s["Resource"])) == 2
            ):
                return True
    return False


def test_given_every_bucket_when_read_then_blocked_encrypted_and_tls_only(
    cfn_template: dict[str, Any],
) -> None:
    buckets = resources_of(cfn_template, "AWS::S3::Bucket")
    assert {"RawBucket", "CuratedBucket"} <= set(buckets)
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}, lid
        assert len(props["PublicAccessBlockConfiguration"]) == 4, lid
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert _tls_only(cfn_template, lid), f"{lid} has no TLS-only bucket policy"


def test_given_a_bucket_without_a_policy_when_checked_then_it_is_not_tls_only() -> None:
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {}}}}
    assert _tls_only(template, "B") is False


def test_given_raw_bucket_when_read_then_sales_and_quarantine_have_lifecycle_rules(
    cfn_template: dict[str, Any],
) -> None:
    rules = cfn_template["Resources"]["RawBucket"]["Properties"]["LifecycleConfiguration"]
    prefixes = {r.get("Prefix") for r in rules["Rules"] if r["Status"] == "Enabled"}
    assert {"sales/", "quarantine/"} <= prefixes


def test_given_forecasts_table_when_read_then_ttl_pitr_and_encryption_are_on(
    cfn_template: dict[str, Any],
) -> None:
    table = cfn_template["Resources"]["ForecastTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_given_forecasts_table_when_read_then_by_date_indexes_the_writers_date_sort_key(
    cfn_template: dict[str, Any],
) -> None:
    table = cfn_template["Resources"]["ForecastTable"]["Properties"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == BY_DATE_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": DATE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert set(index["Projection"]["NonKeyAttributes"]) == set(NUMBERS)
    assert {"AttributeName": DATE_SORT_KEY, "AttributeType": "S"} in table["AttributeDefinitions"]


def test_given_the_get_forecast_role_when_read_then_the_by_date_index_is_query_only(
    cfn_template: dict[str, Any],
) -> None:
    statements = role_statements(
        cfn_template, function_role_id(cfn_template, "GetForecastFunction")
    )
    on_index = [
        (s["Effect"], as_list(s["Action"]))
        for s in statements
        if s["Resource"] == {"Fn::Sub": "${ForecastTable.Arn}/index/" + BY_DATE_INDEX}
    ]
    assert on_index == [("Allow", ["dynamodb:Query"])]


def test_given_the_stream_when_read_then_it_is_kms_encrypted(
    cfn_template: dict[str, Any],
) -> None:
    stream = cfn_template["Resources"]["SalesStream"]["Properties"]
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"


# ---------------------------------------------------------------- API and observability


def test_given_functions_and_api_when_read_then_x_ray_tracing_is_active(
    cfn_template: dict[str, Any],
) -> None:
    functions = resources_of(cfn_template, "AWS::Lambda::Function")
    modes = {
        lid: f["Properties"].get("TracingConfig", {}).get("Mode") for lid, f in functions.items()
    }
    stages = resources_of(cfn_template, "AWS::ApiGateway::Stage")
    assert set(modes.values()) == {"Active"}
    assert [s["Properties"].get("TracingEnabled") for s in stages.values()] == [True]


def test_given_the_api_when_read_then_stage_v1_has_access_logs_and_cognito_is_default(
    cfn_template: dict[str, Any],
) -> None:
    (stage,) = resources_of(cfn_template, "AWS::ApiGateway::Stage").values()
    body = cfn_template["Resources"]["FmcgApi"]["Properties"]["Body"]
    unauthenticated = sorted(
        f"{method.upper()} {path}"
        for path, methods in body["paths"].items()
        for method, spec in methods.items()
        if method != "options" and spec.get("security") != [{"CognitoAuthorizer": []}]
    )
    assert stage["Properties"]["StageName"] == "v1"
    assert "DestinationArn" in stage["Properties"]["AccessLogSetting"]
    assert body["securityDefinitions"]["CognitoAuthorizer"]["x-amazon-apigateway-authtype"] == (
        "cognito_user_pools"
    )
    assert unauthenticated == ["GET /openapi.json"]


def test_given_the_alarms_when_read_then_they_match_the_seed_thresholds(
    cfn_template: dict[str, Any],
) -> None:
    res = cfn_template["Resources"]
    stockout = res["StockoutAlarm"]["Properties"]
    bias = res["ForecastBiasAlarm"]["Properties"]
    (subscription,) = res["ForecastBiasTopic"]["Properties"]["Subscription"]
    assert (stockout["Namespace"], stockout["MetricName"], stockout["Threshold"]) == (
        "FMCG/Business",
        "StockoutCount",
        50,
    )
    assert stockout["Period"] * stockout["EvaluationPeriods"] == 900
    assert stockout["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert (bias["Threshold"], bias["AlarmActions"][0]) == (25, {"Ref": "ForecastBiasTopic"})
    assert subscription == {"Protocol": "email", "Endpoint": {"Ref": "AlertEmail"}}
    assert {"IteratorAgeAlarm", "QuarantineRateAlarm", "OperationsDashboard"} <= set(res)


# ---------------------------------------------------------------- data that outlives the stack

#: Resource types whose data a stack delete or a replacing update must leave in place.
STATEFUL_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Cognito::UserPool")


def test_given_the_stateful_resources_when_read_then_each_is_retained_on_delete_and_replace(
    cfn_template: dict[str, Any],
) -> None:
    stateful = {lid: r for t in STATEFUL_TYPES for lid, r in resources_of(cfn_template, t).items()}
    assert {"RawBucket", "CuratedBucket", "ForecastTable", "OrdersTable", "UserPool"} <= set(
        stateful
    )
    not_retained = sorted(
        lid
        for lid, r in stateful.items()
        if (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) != ("Retain", "Retain")
    )
    assert not_retained == []


def test_given_the_tables_and_the_user_pool_when_read_then_deletion_protection_is_on(
    cfn_template: dict[str, Any],
) -> None:
    tables = resources_of(cfn_template, "AWS::DynamoDB::Table")
    unprotected = sorted(
        lid
        for lid, t in tables.items()
        if t["Properties"].get("DeletionProtectionEnabled") is not True
    )
    (pool,) = resources_of(cfn_template, "AWS::Cognito::UserPool").values()
    assert unprotected == []
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


# ---------------------------------------------------------------- per-client limits


def test_given_the_api_stage_when_read_then_a_regional_web_acl_limits_each_address(
    cfn_template: dict[str, Any],
) -> None:
    (acl_id, acl), *others = resources_of(cfn_template, "AWS::WAFv2::WebACL").items()
    (association,) = resources_of(cfn_template, "AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = resources_of(cfn_template, "AWS::ApiGateway::Stage")
    rates = [
        (r["Statement"]["RateBasedStatement"], r["Action"])
        for r in acl["Properties"]["Rules"]
        if "RateBasedStatement" in r["Statement"]
    ]
    assert others == []
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert [(s["AggregateKeyType"], s["Limit"], "Block" in a) for s, a in rates] == [
        ("IP", 300, True)
    ]
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert association["Properties"]["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${FmcgApi}"
        f"/stages/${{{stage_id}}}"
    }


def test_given_the_functions_when_read_then_each_has_reserved_concurrency(
    cfn_template: dict[str, Any],
) -> None:
    functions = resources_of(cfn_template, "AWS::Lambda::Function")
    reserved = {
        lid: f["Properties"].get("ReservedConcurrentExecutions") for lid, f in functions.items()
    }
    assert reserved == {
        "IngestStreamFunction": {"Ref": "IngestReservedConcurrency"},
        "GetForecastFunction": {"Ref": "ApiReservedConcurrency"},
        "AdminApiFunction": {"Ref": "AdminApiReservedConcurrency"},
    }


def test_given_the_spec_route_when_read_then_api_gateway_answers_it_without_a_function(
    cfn_template: dict[str, Any],
) -> None:
    body = cfn_template["Resources"]["FmcgApi"]["Properties"]["Body"]
    integrations = {
        f"{method.upper()} {path}": spec["x-amazon-apigateway-integration"]["type"]
        for path, methods in body["paths"].items()
        for method, spec in methods.items()
    }
    assert integrations.pop("GET /openapi.json") == "mock"
    assert set(integrations.values()) == {"aws_proxy"}
    permissions = resources_of(cfn_template, "AWS::Lambda::Permission")
    assert not [lid for lid in permissions if "OpenApi" in lid]


# ---------------------------------------------------------------- sign-in


def test_given_the_app_client_when_read_then_srp_only_and_no_user_existence_errors(
    cfn_template: dict[str, Any],
) -> None:
    (client,) = resources_of(cfn_template, "AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert sorted(props["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    assert props["GenerateSecret"] is False


def test_given_the_app_client_when_read_then_id_and_access_tokens_live_15_to_60_minutes(
    cfn_template: dict[str, Any],
) -> None:
    (client,) = resources_of(cfn_template, "AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    seconds = {"minutes": 60, "hours": 3600, "days": 86400}
    units = props["TokenValidityUnits"]
    for token, unit in (("IdTokenValidity", "IdToken"), ("AccessTokenValidity", "AccessToken")):
        assert 15 * 60 <= props[token] * seconds[units[unit]] <= 60 * 60, token
    assert props["EnableTokenRevocation"] is True


def test_given_the_user_pool_when_read_then_mfa_is_required_and_threats_are_enforced(
    cfn_template: dict[str, Any],
) -> None:
    (pool,) = resources_of(cfn_template, "AWS::Cognito::UserPool").values()
    props = pool["Properties"]
    (risk,) = resources_of(
        cfn_template, "AWS::Cognito::UserPoolRiskConfigurationAttachment"
    ).values()
    assert (props["MfaConfiguration"], props["EnabledMfas"]) == ("ON", ["SOFTWARE_TOKEN_MFA"])
    assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert props["UserPoolTier"] == "PLUS"  # threat protection is a Plus feature
    assert props["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert risk["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
    assert (
        risk["Properties"]["AccountTakeoverRiskConfiguration"]["Actions"]["HighAction"][
            "EventAction"
        ]
        == "BLOCK"
    )
