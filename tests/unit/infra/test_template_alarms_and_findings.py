"""Issue 29 on infra/template.yaml (after the SAM transform): failed stream batches kept,
every failure alarmed, the open template findings closed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.local.kcl import LEASE_OWNER_INDEX, application_name
from tests.support.template_policies import as_list, resources_of, role_statements

#: Seconds in a day and in a week.
DAY = 86_400
WEEK = 7 * DAY


def _referenced(value: Any) -> set[str]:
    """The logical ids and parameters a property value refers to (Ref, GetAtt, Sub)."""
    if isinstance(value, list):
        return {r for v in value for r in _referenced(v)}
    if not isinstance(value, dict):
        return set()
    out: set[str] = set()
    for key, arg in value.items():
        if key == "Ref":
            out.add(arg)
        elif key == "Fn::GetAtt":
            out.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        elif key == "Fn::Sub":
            text = arg[0] if isinstance(arg, list) else arg
            out |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            if isinstance(arg, list):
                out |= _referenced(list(arg[1].values()))
        else:
            out |= _referenced(arg)
    return out


def _default(template: dict[str, Any], parameter: str) -> int:
    return int(template["Parameters"][parameter]["Default"])


def test_given_values_with_intrinsics_when_read_then_every_reference_is_found() -> None:
    value = [
        {"Ref": "A"},
        {"Fn::GetAtt": ["B", "Arn"]},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${C}/${D.Arn}/${!literal}"},
        {"Fn::Join": ["", [{"Ref": "E"}]]},
    ]
    assert _referenced(value) == {"A", "B", "AWS::Partition", "C", "D", "E"}


# ---------------------------------------------------------------- failed stream batches kept


def test_given_the_ingest_mapping_when_read_then_failed_batches_go_to_the_s3_bucket(
    cfn_template: dict[str, Any],
) -> None:
    (mapping,) = resources_of(cfn_template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["FailedBatchesBucket", "Arn"]}}
    }
    assert props["MaximumRecordAgeInSeconds"] == {"Ref": "IngestMaxRecordAgeSeconds"}
    # The one queue is the raw zone's events for compaction, not a failure destination.
    assert set(resources_of(cfn_template, "AWS::SQS::Queue")) == {"RawEventsQueue"}


def test_given_the_failed_batches_bucket_when_read_then_it_is_kept_private_and_expires(
    cfn_template: dict[str, Any],
) -> None:
    bucket = cfn_template["Resources"]["FailedBatchesBucket"]
    props = bucket["Properties"]
    (expiry,) = props["LifecycleConfiguration"]["Rules"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert (expiry["Status"], expiry["ExpirationInDays"], expiry.get("Prefix")) == (
        "Enabled",
        90,
        None,
    )


def test_given_the_ingest_role_when_read_then_lambda_may_write_the_bucket_only(
    cfn_template: dict[str, Any],
) -> None:
    statements = role_statements(cfn_template, "IngestStreamLambdaRole")
    on_bucket = sorted(
        (as_list(s["Action"]), s["Resource"])
        for s in statements
        if "FailedBatchesBucket" in _referenced(s["Resource"])
    )
    assert on_bucket == [
        (["s3:ListBucket"], {"Fn::GetAtt": ["FailedBatchesBucket", "Arn"]}),
        (["s3:PutObject"], {"Fn::Sub": "${FailedBatchesBucket.Arn}/*"}),
    ]
    assert not [a for s in statements for a in as_list(s["Action"]) if a.startswith("sqs:")]


def test_given_the_retention_parameters_when_read_then_a_week_passes_before_a_record_is_lost(
    cfn_template: dict[str, Any],
) -> None:
    params = cfn_template["Parameters"]
    retention_s = _default(cfn_template, "StreamRetentionHours") * 3600
    max_age_s = _default(cfn_template, "IngestMaxRecordAgeSeconds")
    stream = cfn_template["Resources"]["SalesStream"]["Properties"]

    assert stream["RetentionPeriodHours"] == {"Ref": "StreamRetentionHours"}
    assert retention_s >= WEEK
    assert params["StreamRetentionHours"]["MinValue"] >= 168
    # The mapping hands a batch on at least a day before the stream would trim it, and
    # never later than Lambda allows (a week).
    assert DAY <= max_age_s <= retention_s - DAY
    assert params["IngestMaxRecordAgeSeconds"]["MaxValue"] == WEEK


# ---------------------------------------------------------------- KCL tables


def test_given_the_kcl_tables_when_read_then_they_carry_the_names_the_worker_uses(
    cfn_template: dict[str, Any],
) -> None:
    # KCL 3.x: the lease table is the daemon's tableName (the application name here), and it
    # keeps "<app>-CoordinatorState" and "<app>-WorkerMetricStats" beside it.
    app = application_name("${AWS::StackName}")
    res = cfn_template["Resources"]
    tables = resources_of(cfn_template, "AWS::DynamoDB::Table")
    kcl = {lid: t["Properties"] for lid, t in tables.items() if lid.startswith("Kcl")}

    assert {lid: props["TableName"] for lid, props in kcl.items()} == {
        "KclLeaseTable": {"Fn::Sub": app},
        "KclCoordinatorStateTable": {"Fn::Sub": f"{app}-CoordinatorState"},
        "KclWorkerMetricStatsTable": {"Fn::Sub": f"{app}-WorkerMetricStats"},
    }
    assert {lid: props["KeySchema"] for lid, props in kcl.items()} == {
        "KclLeaseTable": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        "KclCoordinatorStateTable": [{"AttributeName": "key", "KeyType": "HASH"}],
        "KclWorkerMetricStatsTable": [{"AttributeName": "wid", "KeyType": "HASH"}],
    }
    (index,) = kcl["KclLeaseTable"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == LEASE_OWNER_INDEX
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    for lid, props in kcl.items():
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert res[lid]["DeletionPolicy"] == "Retain", lid
    assert "kcl-leases" not in str(cfn_template)


# ---------------------------------------------------------------- network findings

#: What Lambda does for a function outside the function's own interface (ENIs, logs, the
#: event source mapping's reads and on-failure writes, X-Ray): no endpoint carries it.
OUTSIDE_THE_VPC = frozenset(
    {
        "VpcNetworkInterfaces",
        "XRaySegments",
        "OwnLogs",
        "ReadSalesStream",
        "OnFailureDestination",
        "OnFailureDestinationList",
    }
)
#: Endpoint service name suffix of each IAM service prefix the functions call in the VPC.
ENDPOINT_SERVICE = {"s3": "s3", "dynamodb": "dynamodb", "cognito-idp": "cognito-idp"}


def _endpoints(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """VPC endpoint properties by service (the last part of the service name)."""
    return {
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: e["Properties"]
        for e in resources_of(template, "AWS::EC2::VPCEndpoint").values()
    }


def test_given_every_security_group_when_read_then_nothing_may_leave_for_anywhere(
    cfn_template: dict[str, Any],
) -> None:
    rules = [
        (lid, rule)
        for lid, sg in resources_of(cfn_template, "AWS::EC2::SecurityGroup").items()
        for rule in sg["Properties"].get("SecurityGroupEgress", [])
    ] + [
        (lid, e["Properties"])
        for lid, e in resources_of(cfn_template, "AWS::EC2::SecurityGroupEgress").items()
    ]
    groups = resources_of(cfn_template, "AWS::EC2::SecurityGroup")

    open_rules = [lid for lid, r in rules if r.get("CidrIp") == "0.0.0.0/0" or "CidrIpv6" in r]
    assert rules
    assert open_rules == []
    # Without an egress list a group keeps the default allow-all rule.
    assert [
        lid for lid, g in groups.items() if not g["Properties"].get("SecurityGroupEgress")
    ] == []


def test_given_the_vpc_when_read_then_there_is_no_nat_internet_gateway_or_default_route(
    cfn_template: dict[str, Any],
) -> None:
    absent = ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP")
    routes = resources_of(cfn_template, "AWS::EC2::Route")
    assert [t for t in absent if resources_of(cfn_template, t)] == []
    assert routes == {}


def test_given_every_endpoint_when_read_then_its_policy_names_the_stack_or_its_account(
    cfn_template: dict[str, Any],
) -> None:
    resources = set(cfn_template["Resources"])
    endpoints = _endpoints(cfn_template)
    assert set(endpoints) == {
        "s3",
        "dynamodb",
        "kinesis-streams",
        "logs",
        "monitoring",
        "xray",
        "cognito-idp",
    }
    for service, props in endpoints.items():
        statements = as_list(props["PolicyDocument"]["Statement"])
        assert statements, service
        for s in statements:
            named = _referenced(s["Resource"]) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
            account = s["Condition"]["StringEquals"]["aws:PrincipalAccount"]
            assert s["Effect"] == "Allow", service
            assert account == {"Ref": "AWS::AccountId"}, service
            assert not [a for a in as_list(s["Action"]) if a.endswith("*")], service
            if s["Resource"] == "*":  # services without resource types: the account scopes it
                assert service in {"monitoring", "xray"}, service
            else:
                assert named and named <= resources | {"AWS::StackName"}, (service, named)
    monitoring = as_list(endpoints["monitoring"]["PolicyDocument"]["Statement"])[0]
    assert monitoring["Condition"]["StringEquals"]["cloudwatch:namespace"] == [
        "FMCG/System",
        "FMCG/Business",
    ]


def test_given_the_function_roles_when_read_then_their_endpoints_pass_what_they_grant(
    cfn_template: dict[str, Any],
) -> None:
    endpoints = {
        service: as_list(props["PolicyDocument"]["Statement"])
        for service, props in _endpoints(cfn_template).items()
    }
    roles = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in resources_of(cfn_template, "AWS::Lambda::Function").values()
    }
    missing = []
    for role in sorted(roles):
        for s in role_statements(cfn_template, role):
            if s.get("Sid") in OUTSIDE_THE_VPC:
                continue
            for action in as_list(s["Action"]):
                service = ENDPOINT_SERVICE.get(action.split(":")[0])
                if service is None:
                    missing.append((role, s.get("Sid"), action, "no endpoint"))
                    continue
                passed = any(
                    action in as_list(e["Action"])
                    and _referenced(s["Resource"]) <= _referenced(e["Resource"])
                    for e in endpoints[service]
                )
                if not passed:
                    missing.append((role, s.get("Sid"), action, service))
    assert roles >= {"IngestStreamLambdaRole", "GetForecastLambdaRole", "AdminApiLambdaRole"}
    assert missing == []


# ---------------------------------------------------------------- API findings


def test_given_the_web_acl_when_read_then_aws_managed_rule_groups_follow_the_rate_rule(
    cfn_template: dict[str, Any],
) -> None:
    (acl,) = resources_of(cfn_template, "AWS::WAFv2::WebACL").values()
    rules = sorted(acl["Properties"]["Rules"], key=lambda r: r["Priority"])
    managed = [
        (r["Statement"]["ManagedRuleGroupStatement"], r["OverrideAction"])
        for r in rules
        if "ManagedRuleGroupStatement" in r["Statement"]
    ]
    assert "RateBasedStatement" in rules[0]["Statement"]
    assert managed == [
        ({"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}, {"None": {}}),
        ({"VendorName": "AWS", "Name": "AWSManagedRulesKnownBadInputsRuleSet"}, {"None": {}}),
    ]


def test_given_the_web_acl_when_read_then_it_logs_to_an_aws_waf_logs_group_without_tokens(
    cfn_template: dict[str, Any],
) -> None:
    (acl_id,) = resources_of(cfn_template, "AWS::WAFv2::WebACL")
    (logging,) = resources_of(cfn_template, "AWS::WAFv2::LoggingConfiguration").values()
    props = logging["Properties"]
    (destination,) = props["LogDestinationConfigs"]
    (group_id,) = _referenced(destination) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
    group = cfn_template["Resources"][group_id]["Properties"]

    assert props["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert destination["Fn::Sub"].endswith(f":log-group:${{{group_id}}}")  # no ':*'
    assert group["LogGroupName"]["Fn::Sub"].startswith("aws-waf-logs-")
    assert group["RetentionInDays"] > 0
    assert props["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]


def test_given_the_api_gateway_logging_role_when_read_then_only_this_account_writes_logs(
    cfn_template: dict[str, Any],
) -> None:
    role = cfn_template["Resources"]["ApiGatewayCloudWatchRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    statements = role_statements(cfn_template, "ApiGatewayCloudWatchRole")
    actions = {a for s in statements for a in as_list(s["Action"])}
    writes = next(s for s in statements if "logs:PutLogEvents" in as_list(s["Action"]))

    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert actions.isdisjoint({"logs:GetLogEvents", "logs:FilterLogEvents"})
    assert not [r for r in as_list(writes["Resource"]) if r["Fn::Sub"].endswith(":log-group:*")]


# ---------------------------------------------------------------- every failure alarmed

ALERTS = {"Ref": "AlertsTopic"}


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads."""
    props = alarm["Properties"]
    if "MetricName" in props:
        stats = [{"Namespace": props["Namespace"], "MetricName": props["MetricName"],
                  "Dimensions": props.get("Dimensions", [])}]  # fmt: skip
    else:
        stats = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m.get("Dimensions", [])})
        for m in stats
    ]


def _alarm_on(template: dict[str, Any], namespace: str, metric: str, **dims: Any) -> dict[str, Any]:
    """The one alarm that reads ``metric`` with exactly ``dims``."""
    (props,) = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if (namespace, metric, dims) in _alarm_metrics(a)
    ]
    return props


def _hourly_schedule_s(cron: str) -> int:
    """The period of a Glue cron schedule that fires once an hour (``cron(M * * * ? *)``)."""
    minute, hour, *rest = cron.removeprefix("cron(").removesuffix(")").split()
    assert minute.isdigit() and hour == "*" and rest == ["*", "*", "?", "*"], cron
    return 3600


def test_given_every_alarm_when_read_then_it_notifies_the_critical_alerts_topic(
    cfn_template: dict[str, Any],
) -> None:
    alarms = resources_of(cfn_template, "AWS::CloudWatch::Alarm")
    silent = sorted(
        lid for lid, a in alarms.items() if ALERTS not in a["Properties"]["AlarmActions"]
    )
    assert len(alarms) >= 14
    assert silent == []


def test_given_each_function_when_read_then_its_errors_and_throttles_are_alarmed(
    cfn_template: dict[str, Any],
) -> None:
    functions = resources_of(cfn_template, "AWS::Lambda::Function")
    for lid in functions:
        for metric in ("Errors", "Throttles"):
            alarm = _alarm_on(cfn_template, "AWS/Lambda", metric, FunctionName={"Ref": lid})
            assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
                "Sum",
                0,
                "GreaterThanThreshold",
            ), (lid, metric)
            assert alarm["Period"] * alarm["EvaluationPeriods"] <= 900, (lid, metric)
    assert len(functions) == 3


def test_given_the_quarantine_and_held_aside_metrics_when_read_then_both_are_alarmed(
    cfn_template: dict[str, Any],
) -> None:
    quarantine = _alarm_on(cfn_template, "FMCG/System", "QuarantinedRecords", service="ingest")
    held = _alarm_on(cfn_template, "FMCG/System", "HeldAsideRecords", service="compaction")
    unreadable = _alarm_on(
        cfn_template, "FMCG/System", "UnreadableRawObjects", service="compaction"
    )
    compaction_role = cfn_template["Resources"]["CompactSalesJob"]["Properties"]["Role"]
    (put_metric,) = [
        s
        for s in role_statements(cfn_template, compaction_role["Fn::GetAtt"][0])
        if s["Action"] == "cloudwatch:PutMetricData"
    ]

    assert (quarantine["Threshold"], quarantine["ComparisonOperator"]) == (
        5,
        "GreaterThanThreshold",
    )
    for counted in (held, unreadable):
        assert (counted["Statistic"], counted["Threshold"], counted["ComparisonOperator"]) == (
            "Sum",
            0,
            "GreaterThanThreshold",
        )
    assert put_metric["Condition"] == {"StringEquals": {"cloudwatch:namespace": "FMCG/System"}}


def test_given_the_ingest_mapping_when_read_then_its_failures_are_alarmed(
    cfn_template: dict[str, Any],
) -> None:
    ingest = {"Ref": "IngestStreamFunction"}
    discarded = _alarm_on(
        cfn_template,
        "AWS/S3",
        "PutRequests",
        BucketName={"Ref": "FailedBatchesBucket"},
        FilterId="EntireBucket",
    )
    undelivered = _alarm_on(
        cfn_template, "AWS/Lambda", "DestinationDeliveryFailures", FunctionName=ingest
    )
    behind = _alarm_on(cfn_template, "AWS/Lambda", "IteratorAge", FunctionName=ingest)
    metrics = cfn_template["Resources"]["FailedBatchesBucket"]["Properties"][
        "MetricsConfigurations"
    ]

    assert metrics == [{"Id": "EntireBucket"}]
    for alarm in (discarded, undelivered):
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert behind["Threshold"] == 60_000


def test_given_the_forecast_schedule_when_read_then_two_missed_runs_raise_the_stale_alarm(
    cfn_template: dict[str, Any],
) -> None:
    res = cfn_template["Resources"]
    schedule = res["CompactionSchedule"]["Properties"]
    after = res["ForecastAfterCompaction"]["Properties"]
    (condition,) = after["Predicate"]["Conditions"]
    alarm = res["ForecastStaleAlarm"]
    stale = alarm["Properties"]
    period_s = _hourly_schedule_s(schedule["Schedule"])

    # The forecast runs after each scheduled compaction, so it shares its schedule.
    assert schedule["Actions"] == [{"JobName": {"Ref": "CompactSalesJob"}}]
    assert (condition["JobName"], condition["State"]) == ({"Ref": "CompactSalesJob"}, "SUCCEEDED")
    assert after["Actions"] == [{"JobName": {"Ref": "ForecastDemandJob"}}]
    assert _alarm_metrics(alarm) == [("FMCG/Business", "ForecastBias", {"service": "forecast"})]
    assert stale["Statistic"] == "SampleCount"
    assert (stale["Threshold"], stale["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert stale["Period"] * stale["EvaluationPeriods"] == 2 * period_s
    assert stale["DatapointsToAlarm"] == stale["EvaluationPeriods"]
    assert stale["TreatMissingData"] == "breaching"


def test_given_the_glue_jobs_when_a_run_fails_then_eventbridge_sends_it_to_the_topic(
    cfn_template: dict[str, Any],
) -> None:
    (rule_id, rule), *others = resources_of(cfn_template, "AWS::Events::Rule").items()
    props = rule["Properties"]
    (policy,) = resources_of(cfn_template, "AWS::SNS::TopicPolicy").values()
    statements = as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    (from_events,) = [
        s for s in statements if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]

    assert others == []
    assert props["State"] == "ENABLED"
    assert props["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {
            "jobName": [{"Ref": "CompactSalesJob"}, {"Ref": "ForecastDemandJob"}],
            "state": ["FAILED", "TIMEOUT", "STOPPED"],
        },
    }
    assert [t["Arn"] for t in props["Targets"]] == [ALERTS]
    assert policy["Properties"]["Topics"] == [ALERTS]
    assert (from_events["Action"], from_events["Resource"]) == ("sns:Publish", ALERTS)
    assert from_events["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}
    }
    # Replacing the default topic policy must not silence the alarms.
    assert [s["Principal"] for s in statements if s is not from_events] == [
        {"Service": "cloudwatch.amazonaws.com"}
    ]


def test_given_the_alert_email_parameter_when_empty_then_no_subscription_is_made(
    cfn_template: dict[str, Any],
) -> None:
    param = cfn_template["Parameters"]["CriticalAlertsEmail"]
    (sub_id, sub), *others = resources_of(cfn_template, "AWS::SNS::Subscription").items()
    condition = cfn_template["Conditions"][sub["Condition"]]
    pattern = re.compile(param["AllowedPattern"])

    assert others == []
    assert param["Default"] == ""
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CriticalAlertsEmail"}, ""]}]}
    assert sub["Properties"] == {
        "TopicArn": ALERTS,
        "Protocol": "email",
        "Endpoint": {"Ref": "CriticalAlertsEmail"},
    }
    assert [bool(pattern.fullmatch(v)) for v in ("", "oncall@example.com", "no at", "a@b")] == [
        True,
        True,
        False,
        False,
    ]


def test_given_the_dashboard_when_read_then_an_alarm_widget_shows_every_alarm(
    cfn_template: dict[str, Any],
) -> None:
    body = cfn_template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]
    text = body["Fn::Sub"]
    alarms = set(resources_of(cfn_template, "AWS::CloudWatch::Alarm"))
    # Render the Sub with stand-ins so the body parses as the JSON CloudWatch receives.
    rendered = re.sub(r"\$\{([^}]+)\}", lambda m: m.group(1).replace('"', ""), text)
    widgets = json.loads(rendered)["widgets"]
    (shown,) = [w["properties"]["alarms"] for w in widgets if w["type"] == "alarm"]

    assert {a.removesuffix(".Arn") for a in shown} == alarms


def test_given_the_compaction_job_then_its_bounds_come_from_the_stack_parameters(
    cfn_template: dict[str, Any],
) -> None:
    arguments = cfn_template["Resources"]["CompactSalesJob"]["Properties"]["DefaultArguments"]
    parameters = cfn_template["Parameters"]

    assert arguments["--raw_open_days"] == {"Ref": "RawOpenDays"}
    assert arguments["--lateness_horizon_days"] == {"Ref": "LatenessHorizonDays"}
    assert arguments["--max_raw_objects"] == {"Ref": "MaxRawObjectsPerRun"}
    # An arrival day stays open for the stream's retention plus one day.
    assert (
        parameters["RawOpenDays"]["Default"] * 24
        >= parameters["StreamRetentionHours"]["Default"] + 24
    )
    assert (
        parameters["LatenessHorizonDays"]["Default"],
        parameters["MaxRawObjectsPerRun"]["Default"],
    ) == (35, 10000)


# ---------------------------------------------------------------- raw zone events


def test_given_the_raw_bucket_when_read_then_new_sales_objects_are_sent_to_the_events_queue(
    cfn_template: dict[str, Any],
) -> None:
    bucket = cfn_template["Resources"]["RawBucket"]
    (config,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]

    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Queue"] == {"Fn::GetAtt": ["RawEventsQueue", "Arn"]}
    assert config["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": "sales/"},
        {"Name": "suffix", "Value": ".json"},
    ]
    # S3 checks its permission to send when the configuration is set: the policy first.
    assert bucket["DependsOn"] == "RawEventsQueuePolicy"


def test_given_the_events_queue_when_read_then_only_the_raw_bucket_may_send_over_tls(
    cfn_template: dict[str, Any],
) -> None:
    res = cfn_template["Resources"]
    queue = res["RawEventsQueue"]["Properties"]
    policy = res["RawEventsQueuePolicy"]["Properties"]
    allow, deny = policy["PolicyDocument"]["Statement"]
    raw_name = res["RawBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Longer than the job may run: messages of a live run never reappear under it.
    timeout_s = res["CompactSalesJob"]["Properties"]["Timeout"] * 60
    assert queue["VisibilityTimeout"] > timeout_s
    assert policy["Queues"] == [{"Ref": "RawEventsQueue"}]
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == (
        "Allow",
        {"Service": "s3.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{raw_name}"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_given_the_compaction_job_when_read_then_it_drains_the_events_queue_only(
    cfn_template: dict[str, Any],
) -> None:
    job = cfn_template["Resources"]["CompactSalesJob"]["Properties"]
    statements = role_statements(cfn_template, job["Role"]["Fn::GetAtt"][0])
    on_sqs = [s for s in statements if any(a.startswith("sqs:") for a in as_list(s["Action"]))]

    assert job["DefaultArguments"]["--raw_queue_url"] == {"Ref": "RawEventsQueue"}
    (grant,) = on_sqs
    assert set(as_list(grant["Action"])) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    assert grant["Resource"] == {"Fn::GetAtt": ["RawEventsQueue", "Arn"]}


def test_given_events_waiting_over_two_missed_runs_then_the_age_alarm_notifies_the_topic(
    cfn_template: dict[str, Any],
) -> None:
    alarm = cfn_template["Resources"]["RawEventsAgeAlarm"]["Properties"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["RawEventsQueue", "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 3 * 3600)
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]
