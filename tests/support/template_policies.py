"""Reading IAM policies and resources out of a (SAM-transformed) CloudFormation template."""

from __future__ import annotations

from typing import Any

#: Services whose resources hold data: an Allow on them must name its resources.
DATA_SERVICES = frozenset({"s3", "dynamodb", "kinesis", "sqs", "sns", "cognito-idp", "glue"})


def as_list(value: Any) -> list[Any]:
    """``value`` itself when it is a list, else a list of it (IAM allows both)."""
    return value if isinstance(value, list) else [value]


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The resources of one type, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement a role grants: inline policies and in-template managed policies."""
    role = template["Resources"][role_id]["Properties"]
    statements = [
        s for p in role.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])
    ]
    for arn in role.get("ManagedPolicyArns", []):
        if not (isinstance(arn, dict) and "Ref" in arn):
            raise AssertionError(f"{role_id} attaches a managed policy not in the template: {arn}")
        doc = template["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"]
        statements += as_list(doc["Statement"])
    return statements


def all_policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every identity and resource policy in the template."""
    out: list[tuple[str, dict[str, Any]]] = []
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
        if "PolicyDocument" in props:
            docs.append(props["PolicyDocument"])
        out += [(lid, s) for d in docs for s in as_list(d["Statement"])]
    return out


def wildcard_actions(statement: dict[str, Any]) -> list[str]:
    """The `*` and `service:*` actions of an Allow statement (Deny may be as broad as it likes)."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement:
        return ["NotAction"]
    return [a for a in as_list(statement["Action"]) if a == "*" or a.endswith(":*")]
