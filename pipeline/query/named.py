"""Named queries as the template declares them (``AWS::Athena::NamedQuery``)."""

from __future__ import annotations

from typing import Any

from pipeline.errors import NotFoundError


def named_queries(template: dict[str, Any]) -> dict[str, str]:
    """Every named query of the template: ``Name`` -> ``QueryString``."""
    return {
        str(spec["Properties"]["Name"]): str(spec["Properties"]["QueryString"])
        for spec in template.get("Resources", {}).values()
        if spec.get("Type") == "AWS::Athena::NamedQuery"
    }


def named_query(template: dict[str, Any], name: str) -> str:
    """The SQL of the named query called ``name``."""
    queries = named_queries(template)
    if name not in queries:
        known = ", ".join(sorted(queries)) or "none"
        raise NotFoundError(f"no named query {name!r} in the template (known: {known})")
    return queries[name]
