"""The OpenAPI document API Gateway serves at ``GET /openapi.json``, kept in the template.

The route is a MOCK integration of the REST API (``infra/template.yaml``, ``FmcgApi``
``DefinitionBody``): API Gateway answers it alone, without invoking a function. Its response
template is ``$util.base64Decode("<the document, base64>")``; base64 because the template is
Velocity, where the document's ``$ref`` and ``#/components`` would be template syntax.

``python -m pipeline.api.openapi_document`` (``make openapi``) writes the current document
into the template; ``--check`` exits 1 when the template lags the routes (a unit test runs
the same comparison).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The only response template form the API uses, and the local gateway renders.
RESPONSE_TEMPLATE: Final = re.compile(r'\$util\.base64Decode\("(?P<data>[A-Za-z0-9+/]*={0,2})"\)')
TEMPLATE: Final = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


def _no_clients(service: str) -> Any:
    raise ConfigurationError(f"generating the OpenAPI document needs no {service} client")


def document() -> str:
    """The OpenAPI document of the API's routes, as compact JSON."""
    from pipeline.api.routes import ApiClients, build_resolver, openapi_json
    from pipeline.settings import ApiSettings

    app = build_resolver(ApiSettings(forecast_table="-"), ApiClients(_no_clients))
    return json.dumps(json.loads(openapi_json(app)), separators=(",", ":"), ensure_ascii=False)


def response_template(doc: str) -> str:
    """The mock integration's response template that answers with ``doc``."""
    return f'$util.base64Decode("{base64.b64encode(doc.encode()).decode()}")'


def render(template: str) -> str:
    """What API Gateway answers for a response template of :data:`RESPONSE_TEMPLATE`'s form."""
    found = RESPONSE_TEMPLATE.fullmatch(template.strip())
    if found is None:
        raise ConfigurationError(
            f"response template {template[:60]!r} is not of the form "
            '$util.base64Decode("<base64>"), the only one the local gateway renders'
        )
    return base64.b64decode(found["data"]).decode()


def embedded(template_text: str) -> str:
    """The document the template's ``/openapi.json`` mock answers with."""
    found = list(RESPONSE_TEMPLATE.finditer(template_text))
    if len(found) != 1:
        raise ConfigurationError(
            f"the template holds {len(found)} base64 response templates; expected exactly one"
        )
    return render(found[0].group(0))


def updated(template_text: str, doc: str) -> str:
    """``template_text`` with its ``/openapi.json`` response template answering ``doc``."""
    embedded(template_text)  # exactly one to replace
    return RESPONSE_TEMPLATE.sub(lambda _: response_template(doc), template_text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--check", action="store_true", help="only tell whether it is current")
    args = parser.parse_args(argv)
    text = args.template.read_text()
    current = document()
    if embedded(text) == current:
        print(f"{args.template}: the OpenAPI document is current")  # noqa: T201 - CLI output
        return 0
    if args.check:
        print(f"{args.template}: the OpenAPI document lags the routes; run `make openapi`")  # noqa: T201
        return 1
    args.template.write_text(updated(text, current))
    print(f"{args.template}: OpenAPI document written ({len(current):,} characters)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
