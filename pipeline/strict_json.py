"""The JSON decoder for sales events wherever they are read: ingest and compaction alike.

Standard library only, so a Glue job may import it (Glue provides no fastjsonschema).
``NaN``, ``Infinity`` and ``-Infinity`` are not JSON; ``1e400`` is valid JSON that ``float``
turns into ``inf``, which the raw zone would then hold as ``Infinity``: both are refused
as :class:`~pipeline.errors.RejectedRecord` with the reasons ingest has always used.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from pipeline.errors import RejectedRecord


def _reject_constant(name: str) -> Any:
    raise RejectedRecord("invalid_json", f"non-finite number {name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when a double cannot hold it
    (wherever it is, known field or not, nested or not). A JSON number cannot be NaN, and
    underflow (``1e-400``) is a finite 0."""
    value = float(text)
    if math.isinf(value):
        raise RejectedRecord("non_finite_number", f"{text[:40]} is beyond the range of a double")
    return value


# One decoder for every record: json.loads with a keyword builds a decoder (and its
# scanner) per call.
STRICT_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
