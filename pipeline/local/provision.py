"""Provision the embedded emulator from ``infra/template.yaml`` and nothing else.

Each supported resource type has one small function that creates it through the AWS API
(so the emulator is driven exactly as AWS would be) and returns its ``Ref`` value and the
attributes ``Fn::GetAtt`` may ask for. Resources that have no local counterpart (IAM roles,
functions, the API, VPC, alarms) are recorded as not emulated: functions run from their built
artifacts through ``fmcg local invoke``, the local poller and the local gateway instead.
Glue's table optimizers are among them (moto has none; whatever maintains the curated tables
locally is not provisioned from the template), and so are the curated Iceberg tables, which
the template does not declare: the jobs create them on their first run, locally as on AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import is_transient, translate
from pipeline.errors import ConfigurationError
from pipeline.local.template import (
    DEFAULT_TEMPLATE,
    ResolveContext,
    Unresolved,
    load_template,
    parameter_defaults,
    resolve,
)

if TYPE_CHECKING:
    from pathlib import Path

    import boto3

#: Parameters the deploy step passes from the build (they have no default). Resources are
#: created before anything is built, so they start from these stand-ins; the local Glue
#: runtime resolves each job with the values of the artifacts it publishes before a run
#: (pipeline/local/glue_runtime.py), as a deploy after the build would.
DEPLOY_STAND_INS: dict[str, str] = {"PipelineWheelSha256": "0" * 64}

Provisioned = tuple[str, dict[str, str]]


class Clients:
    """One client per service for a whole provisioning: a new boto3 client costs ~18 ms of
    CPU (its event hooks copied, its endpoint resolved), and the template's resources asked
    for 28 of them, 0.5 s of every stack a test provisions (cProfile).

    Against the emulator the clients are also kept across provisionings (same endpoint and
    region): every stack asked for the same 8 again, 0.12 s of each stack's 0.26 s of CPU.
    They never leave this module, so nothing registers a handler on them."""

    _kept: ClassVar[dict[tuple[str, str, str], Any]] = {}

    def __init__(self, session: boto3.session.Session) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            endpoint: str | None = getattr(self._session, "endpoint_url", None)
            key = (endpoint or "", self._session.region_name, service)
            found = self._kept.get(key) if endpoint else None
            if found is None:
                found = self._session.client(service)  # type: ignore[call-overload]
                if endpoint:
                    self._kept[key] = found
            self._clients[service] = found
        return self._clients[service]


Creator = Callable[[Clients, str, dict[str, Any], "ResolveContext"], Provisioned]


@dataclass(frozen=True)
class Resource:
    """One template resource as it exists locally."""

    logical_id: str
    type: str
    ref: str
    attributes: dict[str, str]
    emulated: bool


def _arn(service: str, ctx: ResolveContext, resource: str) -> str:
    return f"arn:aws:{service}:{ctx.region}:{ctx.account_id}:{resource}"


def _kinesis_stream(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    name = p["Name"]
    kinesis = s.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=int(p.get("ShardCount", 1)))
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    if "RetentionPeriodHours" in p and int(p["RetentionPeriodHours"]) > 24:
        kinesis.increase_stream_retention_period(
            StreamName=name, RetentionPeriodHours=int(p["RetentionPeriodHours"])
        )
    arn = _arn("kinesis", ctx, f"stream/{name}")
    return name, {"Arn": arn}


def _s3_bucket(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    name = p["BucketName"]
    s3 = s.client("s3")
    s3.create_bucket(Bucket=name)
    if "BucketEncryption" in p:
        rules: Any = [
            {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
            for r in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
        )
    if "NotificationConfiguration" in p:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration=bucket_notifications(p["NotificationConfiguration"]),
        )
    return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


def bucket_notifications(config: dict[str, Any]) -> Any:
    """A bucket's ``NotificationConfiguration`` as CloudFormation writes it, in the shape of
    S3's PutBucketNotificationConfiguration (queue, topic and function destinations)."""
    destinations = (
        ("QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "Function", "LambdaFunctionArn"),
    )
    out: dict[str, Any] = {}
    for section, target, arn_field in destinations:
        for entry in config.get(section, []):
            api: dict[str, Any] = {arn_field: entry[target], "Events": [entry["Event"]]}
            rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                api["Filter"] = {"Key": {"FilterRules": rules}}
            out.setdefault(section, []).append(api)
    if "EventBridgeConfiguration" in config:
        out["EventBridgeConfiguration"] = {}
    return out


def _dynamodb_table(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    name = p["TableName"]
    ddb = s.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": p["AttributeDefinitions"],
        "KeySchema": p["KeySchema"],
        "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in p:
        kwargs["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
    if p.get("SSESpecification", {}).get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
    if "DeletionProtectionEnabled" in p:
        kwargs["DeletionProtectionEnabled"] = bool(p["DeletionProtectionEnabled"])
    arn = ddb.create_table(**kwargs)["TableDescription"]["TableArn"]
    ttl = p.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    pitr = p.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return name, {"Arn": arn}


def _sqs_queue(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    name = p["QueueName"]
    attributes: Any = {
        k: str(p[k]) for k in ("MessageRetentionPeriod", "VisibilityTimeout") if k in p
    }
    if "SqsManagedSseEnabled" in p:
        attributes["SqsManagedSseEnabled"] = str(p["SqsManagedSseEnabled"]).lower()
    url = s.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, {"Arn": _arn("sqs", ctx, name), "QueueName": name, "QueueUrl": url}


def _sns_topic(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    name = p["TopicName"]
    sns = s.client("sns")
    arn = sns.create_topic(Name=name)["TopicArn"]
    for sub in p.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
    return arn, {"TopicName": name, "TopicArn": arn}


def _glue_database(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    database_input = p["DatabaseInput"]
    s.client("glue").create_database(DatabaseInput=database_input)
    return database_input["Name"], {}


def _glue_job(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    s.client("glue").create_job(
        Name=p["Name"],
        Role=p["Role"],
        Command=p["Command"],
        DefaultArguments=p.get("DefaultArguments", {}),
        ExecutionProperty=p.get("ExecutionProperty", {}),
    )
    return p["Name"], {}


#: User pool properties that CreateUserPool takes as they are written in the template.
_POOL_PROPERTIES = (
    "Policies",
    "AdminCreateUserConfig",
    "DeletionProtection",
    "MfaConfiguration",
    "UserPoolAddOns",
    "UserPoolTier",
)
#: App client properties that CreateUserPoolClient takes as they are written.
_CLIENT_PROPERTIES = (
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
    "EnableTokenRevocation",
    "AuthSessionValidity",
)


def _user_pool(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    kwargs: dict[str, Any] = {"PoolName": p["UserPoolName"]}
    kwargs.update({k: p[k] for k in _POOL_PROPERTIES if k in p})
    cognito = s.client("cognito-idp")
    pool = cognito.create_user_pool(**kwargs)["UserPool"]
    # CloudFormation's EnabledMfas is SetUserPoolMfaConfig in the API.
    if "SOFTWARE_TOKEN_MFA" in p.get("EnabledMfas", []):
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool["Id"],
            SoftwareTokenMfaConfiguration={"Enabled": True},
            MfaConfiguration=p.get("MfaConfiguration", "OPTIONAL"),
        )
    provider = f"cognito-idp.{ctx.region}.amazonaws.com/{pool['Id']}"
    return pool["Id"], {
        "Arn": pool["Arn"],
        "ProviderName": provider,
        "ProviderURL": f"https://{provider}",
    }


def _user_pool_client(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    client = s.client("cognito-idp").create_user_pool_client(
        UserPoolId=p["UserPoolId"],
        ClientName=p["ClientName"],
        GenerateSecret=bool(p.get("GenerateSecret", False)),
        **{k: p[k] for k in _CLIENT_PROPERTIES if k in p},
    )["UserPoolClient"]
    return client["ClientId"], {}


def _user_pool_group(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    s.client("cognito-idp").create_group(
        GroupName=p["GroupName"],
        UserPoolId=p["UserPoolId"],
        Description=p.get("Description", ""),
    )
    return p["GroupName"], {}


def _athena_workgroup(s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext) -> Provisioned:
    config = p.get("WorkGroupConfiguration", {})
    s.client("athena").create_work_group(
        Name=p["Name"],
        Configuration={"ResultConfiguration": config.get("ResultConfiguration", {})},
    )
    return p["Name"], {}


def _athena_named_query(
    s: Clients, lid: str, p: dict[str, Any], ctx: ResolveContext
) -> Provisioned:
    kwargs = {"Name": p["Name"], "Database": p["Database"], "QueryString": p["QueryString"]}
    if "WorkGroup" in p:
        kwargs["WorkGroup"] = p["WorkGroup"]
    if "Description" in p:
        kwargs["Description"] = p["Description"]
    query_id = s.client("athena").create_named_query(**kwargs)["NamedQueryId"]
    return query_id, {"NamedQueryId": query_id}


CREATORS: dict[str, Creator] = {
    "AWS::Kinesis::Stream": _kinesis_stream,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::Glue::Database": _glue_database,
    "AWS::Glue::Job": _glue_job,
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
    "AWS::Cognito::UserPoolGroup": _user_pool_group,
    "AWS::Athena::WorkGroup": _athena_workgroup,
    "AWS::Athena::NamedQuery": _athena_named_query,
}


def _placeholder(logical_id: str, resource_type: str, ctx: ResolveContext) -> Provisioned:
    """Ref and attributes of a resource with no local counterpart (a role, a function)."""
    arn = _arn(resource_type.split("::")[1].lower(), ctx, f"local/{logical_id}")
    return logical_id, {"Arn": arn}


def provision(
    session: boto3.session.Session,
    *,
    stack_name: str,
    template_path: Path | str = DEFAULT_TEMPLATE,
    parameters: dict[str, Any] | None = None,
) -> tuple[ResolveContext, dict[str, Resource]]:
    """Create every emulated resource of the template, dependencies first."""
    template = load_template(template_path)
    ctx = ResolveContext(
        stack_name=stack_name,
        parameters={**DEPLOY_STAND_INS, **parameter_defaults(template), **(parameters or {})},
        region=session.region_name or "us-east-1",
    )
    pending = dict(template["Resources"])
    done: dict[str, Resource] = {}
    clients = Clients(session)
    # Non-emulated resources resolve to placeholders up front so that emulated ones may
    # reference them (a Glue job's role ARN, say).
    for logical_id, spec in list(pending.items()):
        if spec["Type"] not in CREATORS:
            ref, attrs = _placeholder(logical_id, spec["Type"], ctx)
            ctx.refs[logical_id], ctx.attributes[logical_id] = ref, attrs
            done[logical_id] = Resource(logical_id, spec["Type"], ref, attrs, emulated=False)
            del pending[logical_id]
    while pending:
        progressed = False
        for logical_id, spec in list(pending.items()):
            try:
                props = resolve(spec.get("Properties", {}), ctx)
            except Unresolved:
                continue
            try:
                ref, attrs = CREATORS[spec["Type"]](clients, logical_id, props, ctx)
            except (ClientError, BotoCoreError) as e:
                if is_transient(e):
                    raise translate(e, f"cannot create {logical_id}") from e
                # The emulator refused the resource as the template has it.
                raise ConfigurationError(f"cannot create {logical_id}: {e}") from e
            ctx.refs[logical_id], ctx.attributes[logical_id] = ref, attrs
            done[logical_id] = Resource(logical_id, spec["Type"], ref, attrs, emulated=True)
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise ConfigurationError(
                "template references that cannot be resolved: " + ", ".join(sorted(pending))
            )
    return ctx, done


def function_environment(
    template: dict[str, Any], ctx: ResolveContext, logical_id: str
) -> dict[str, str]:
    """The environment variables the template gives one function (Globals merged in)."""
    resources = template["Resources"]
    if logical_id not in resources:
        raise ConfigurationError(f"no resource {logical_id} in the template")
    global_vars = (
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = resources[logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return {k: str(v) for k, v in resolve({**global_vars, **own}, ctx).items()}
