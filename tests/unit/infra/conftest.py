"""The SAM template as written and as CloudFormation sees it after the SAM transform.

The transform runs offline: code locations become the S3 URIs `sam package` would write,
and the managed-policy loader (which would ask IAM for AWS managed policy ARNs) is a stub
that knows none, so a function that relied on an AWS managed policy by name fails loudly.
"""

from __future__ import annotations

import copy
import os
from typing import Any
from unittest import mock

import pytest
from samtranslator.translator.transform import transform

from pipeline.local.template import DEFAULT_TEMPLATE, load_template

_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _NoManagedPolicies:
    """The managed-policy loader of the transform, without the IAM call."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local code paths replaced by S3 URIs."""
    out = copy.deepcopy(template)
    for logical_id, resource in out["Resources"].items():
        prop = _CODE_PROPERTIES.get(resource["Type"])
        if prop and isinstance(resource.get("Properties", {}).get(prop), str):
            resource["Properties"][prop] = f"s3://artifacts/{logical_id}.zip"
    return out


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """Plain CloudFormation from a SAM template (parameter defaults apply)."""
    # The transform takes the region for its pseudo parameters from a boto3 session.
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1"}):
        return transform(packaged(template), {}, _NoManagedPolicies())


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """infra/template.yaml as written (intrinsics in long form)."""
    return load_template(DEFAULT_TEMPLATE)


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    """infra/template.yaml after the SAM transform."""
    return sam_transform(sam_template)
