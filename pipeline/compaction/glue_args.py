"""Glue-style job arguments (``--name value``) without ``awsglue``.

Glue passes its own arguments too (``--JOB_NAME``, ``--job-bookmark-option``,
``--library-set``, ``--TempDir`` ...); like ``getResolvedOptions``, only the requested
names are returned and everything else is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def resolve_options(argv: Sequence[str], names: Iterable[str]) -> dict[str, str]:
    """The values of ``--<name> value`` (or ``--<name>=value``) for each requested name.

    The last occurrence wins, as in Glue where job-run arguments override the defaults.
    """
    wanted = list(names)
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq:
                has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
                value = argv[i + 1] if has_value else ""
                i += 1 if has_value else 0
            if name in wanted:
                found[name] = value
        i += 1
    missing = [n for n in wanted if not found.get(n)]
    if missing:
        raise ConfigurationError("missing job arguments: " + ", ".join(f"--{n}" for n in missing))
    return found
