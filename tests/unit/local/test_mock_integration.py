"""Mock integrations answered locally as API Gateway would, and the document's round trip."""

from __future__ import annotations

import pytest

from pipeline.api.openapi_document import embedded, render, response_template, updated
from pipeline.errors import ConfigurationError
from pipeline.local.mock_integration import MockIntegration, mock_methods


def _api(integration: dict[str, object], security: object = None) -> dict[str, object]:
    operation: dict[str, object] = {"x-amazon-apigateway-integration": integration}
    if security is not None:
        operation["security"] = security
    return {"DefinitionBody": {"paths": {"/doc": {"get": operation}, "/f": {"post": {}}}}}


def _mock(status: str, responses: dict[str, object]) -> dict[str, object]:
    return {
        "type": "mock",
        "requestTemplates": {"application/json": f'{{"statusCode": {status}}}'},
        "responses": responses,
    }


def test_given_a_document_when_templated_and_rendered_then_it_comes_back_whole() -> None:
    doc = '{"$ref": "#/components/schemas/X", "pattern": "^[a-z]{1,4}$", "t": "ü ##"}'
    assert render(response_template(doc)) == doc
    assert "$ref" not in response_template(doc)  # nothing Velocity would read as a reference


@pytest.mark.parametrize(
    "template",
    ['{"statusCode": 200}', '$input.json("$")', '$util.base64Decode("abc$")', ""],
)
def test_given_another_response_template_when_rendered_then_refused(template: str) -> None:
    with pytest.raises(ConfigurationError, match="is not of the form"):
        render(template)


def test_given_a_template_text_when_updated_then_only_the_document_changes() -> None:
    text = f"a: 1\n  t: '{response_template('old')}'\nb: 2\n"
    assert updated(text, "new") == f"a: 1\n  t: '{response_template('new')}'\nb: 2\n"
    assert embedded(updated(text, "new")) == "new"
    with pytest.raises(ConfigurationError, match="holds 2 base64 response templates"):
        embedded(text + text)


def test_given_a_public_mock_method_when_read_then_its_status_type_and_body() -> None:
    integration = _mock(
        "200",
        {
            "default": {
                "statusCode": "200",
                "responseTemplates": {"application/json": response_template('{"ok": true}')},
            }
        },
    )
    (method,) = mock_methods(_api(integration, security=[{"NONE": []}]))
    assert (method.method, method.path, method.public) == ("GET", "/doc", True)
    assert method.answer == MockIntegration(200, "application/json", b'{"ok": true}')


def test_given_a_status_with_a_selection_pattern_when_read_then_that_response_answers() -> None:
    integration = _mock(
        "503",
        {
            "default": {
                "statusCode": "200",
                "responseTemplates": {"application/json": response_template("{}")},
            },
            "5\\d{2}": {
                "statusCode": "503",
                "responseTemplates": {"application/json": response_template('{"down": 1}')},
            },
        },
    )
    (method,) = mock_methods(_api(integration))
    assert method.public is False
    assert method.answer == MockIntegration(503, "application/json", b'{"down": 1}')


def test_given_a_mock_without_a_status_when_read_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="GET /doc: mock integration without a status"):
        mock_methods(_api({"type": "mock", "responses": {}}))
