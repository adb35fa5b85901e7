"""cfn-lint on infra/template.yaml: no errors and no warnings (SAM resources included)."""

from __future__ import annotations

from cfnlint.api import lint, lint_file

from pipeline.local.template import DEFAULT_TEMPLATE


def test_given_the_template_when_linted_then_there_are_no_errors_or_warnings() -> None:
    matches = lint_file(DEFAULT_TEMPLATE)
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_given_a_sam_function_with_bad_values_when_linted_then_cfn_lint_reports_them() -> None:
    # Proves the linter really validates SAM resources rather than passing them through.
    template = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      CodeUri: s3://bucket/key.zip
      MemorySize: lots
"""
    matches = lint(template)
    assert [(m.rule.id, m.message) for m in matches] == [
        ("E3012", "'lots' is not of type 'integer'")
    ]
