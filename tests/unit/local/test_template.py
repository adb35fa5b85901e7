"""Intrinsic-function resolution and template loading, without AWS."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.template import (
    DEFAULT_TEMPLATE,
    ResolveContext,
    Unresolved,
    load_template,
    parameter_defaults,
    resolve,
)


def _ctx() -> ResolveContext:
    return ResolveContext(
        stack_name="shop",
        parameters={"ShardCount": 3},
        refs={"Bucket": "shop-raw"},
        attributes={"Bucket": {"Arn": "arn:aws:s3:::shop-raw"}},
    )


def test_given_short_tags_when_loading_then_they_become_long_form(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      N: !Sub '${AWS::StackName}-a'\n      R: !Ref B\n      G: !GetAtt B.Arn\n"
    )
    props = load_template(path)["Resources"]["A"]["Properties"]
    assert props == {
        "N": {"Fn::Sub": "${AWS::StackName}-a"},
        "R": {"Ref": "B"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
    }


def test_given_sub_with_pseudo_params_refs_and_attributes_when_resolved_then_all_substituted() -> (
    None
):
    value = {"Fn::Sub": "${AWS::StackName}/${Bucket}/${Bucket.Arn}/${AWS::AccountId}/${!year}"}
    assert resolve(value, _ctx()) == "shop/shop-raw/arn:aws:s3:::shop-raw/123456789012/${year}"


def test_given_join_split_select_when_resolved_then_evaluated_like_cloudformation() -> None:
    value = {"Fn::Join": ["_", {"Fn::Split": ["-", "a-b-c"]}]}
    assert resolve(value, _ctx()) == "a_b_c"
    assert resolve({"Fn::Select": [1, ["x", {"Ref": "Bucket"}]]}, _ctx()) == "shop-raw"
    assert resolve({"Ref": "ShardCount"}, _ctx()) == "3"


def test_given_reference_to_unprovisioned_resource_when_resolved_then_unresolved_names_it() -> None:
    with pytest.raises(Unresolved) as info:
        resolve({"Fn::GetAtt": ["Later", "Arn"]}, _ctx())
    assert info.value.logical_id == "Later"


def test_given_unknown_attribute_when_resolved_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Bucket has no attribute Nope locally"):
        resolve({"Fn::GetAtt": ["Bucket", "Nope"]}, _ctx())


def test_given_missing_template_when_loading_then_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="template not found"):
        load_template(tmp_path / "nope.yaml")


def test_given_project_template_then_runtime_is_python312_and_defaults_are_read() -> None:
    template = load_template(DEFAULT_TEMPLATE)
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    assert parameter_defaults(template)["ShardCount"] == 2
