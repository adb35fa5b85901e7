"""Glue-style job arguments (``--name value``) without ``awsglue``.

Glue passes its own arguments too (``--JOB_NAME``, ``--job-bookmark-option``,
``--additional-python-modules``, ``--TempDir`` ...); like ``getResolvedOptions``, only the
requested names are returned and everything else is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def parse_glue_args(argv: Sequence[str]) -> dict[str, str]:
    """Every ``--name value`` (or ``--name=value``) pair; a flag without a value maps to ``""``.

    The last occurrence wins, as in Glue where job-run arguments override the defaults.
    """
    args: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            name, sep, value = token[2:].partition("=")
            if not sep:
                has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
                value = argv[i + 1] if has_value else ""
                i += 1 if has_value else 0
            args[name] = value
        i += 1
    return args


def resolve_options(
    argv: Sequence[str], names: Iterable[str], optional: Iterable[str] = ()
) -> dict[str, str]:
    """The values of the requested names (like ``getResolvedOptions``); each of ``names`` is
    required, each of ``optional`` is included when given a non-empty value."""
    args = parse_glue_args(argv)
    wanted = list(names)
    missing = [n for n in wanted if not args.get(n)]
    if missing:
        raise ConfigurationError("missing job arguments: " + ", ".join(f"--{n}" for n in missing))
    return {n: args[n] for n in [*wanted, *optional] if args.get(n)}
