"""The import closure of entry points over one package, read from the source with ``ast``.

Like :mod:`modulefinder`, but without executing anything and without the interpreter's
path: every ``import`` and ``from ... import`` is followed, relative ones included, also
where they sit inside functions (a lazy import is still an import the function may run).
Two kinds are left out on purpose:

- imports under ``if TYPE_CHECKING:``: they never run;
- imports inside a ``try`` that catches ``ImportError``: the code works without them.

Names outside the package are reported as top-level module names (``orjson``, ``boto3``,
``json``) so that the caller can check that the artifact provides them.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.packaging.exceptions import ArtifactError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class ImportClosure:
    """What a set of entry points imports, transitively, from one package and outside it."""

    #: Module names of the package (``pipeline.ingest.core``), packages included.
    modules: frozenset[str]
    #: The source files of those modules (namespace packages have none).
    files: frozenset[Path]
    #: Top-level names imported from outside the package, standard library included.
    external: frozenset[str]

    def third_party(self) -> frozenset[str]:
        """The external names that are not part of the standard library."""
        return frozenset(n for n in self.external if n not in sys.stdlib_module_names)


@dataclass(frozen=True)
class _Source:
    path: Path
    module: str  # dotted name; an entry point is named by its file stem
    is_package: bool


def import_closure(
    entry_points: Iterable[Path], *, root: Path, package: str = "pipeline"
) -> ImportClosure:
    """Follow the imports of ``entry_points`` through ``root / package``.

    An entry point's own directory comes first on its search path, as a Lambda function's
    code directory does, so sibling modules of a handler are followed too (they ship with
    it); they are not part of the result's ``modules``.
    """
    modules: set[str] = set()
    files: set[Path] = set()
    external: set[str] = set()
    seen: set[Path] = set()
    queue: list[tuple[_Source, Path]] = []
    for entry in entry_points:
        queue.append((_Source(entry.resolve(), entry.stem, is_package=False), entry.parent))
    while queue:
        source, code_dir = queue.pop()
        if source.path in seen:
            continue
        seen.add(source.path)
        for name, optional in _imported_names(source):
            top = name.partition(".")[0]
            if top == package:
                for found in _package_modules(name, root, source):
                    modules.add(found.module)
                    if found.path is not None:
                        files.add(found.path)
                        queue.append((found.source(), code_dir))
            elif (local := _local_module(code_dir, name)) is not None:
                queue.append((local, code_dir))
            elif not optional:
                external.add(top)
    return ImportClosure(frozenset(modules), frozenset(files), frozenset(external))


@dataclass(frozen=True)
class _Found:
    module: str
    path: Path | None

    def source(self) -> _Source:
        assert self.path is not None
        return _Source(self.path, self.module, is_package=self.path.name == "__init__.py")


def _package_modules(name: str, root: Path, importer: _Source) -> list[_Found]:
    """``name`` and every parent package of it (importing a.b.c runs a and a.b first).

    ``name`` may end in an attribute rather than a module (``from a.b import C`` is seen as
    a.b.C): the longest prefix that resolves is the module; an unresolvable package module
    with nothing to attach an attribute to is an error, as it would be on import.
    """
    parts = name.split(".")
    found: list[_Found] = []
    for i in range(1, len(parts) + 1):
        dotted = ".".join(parts[:i])
        base = root.joinpath(*parts[:i])
        if (base / "__init__.py").is_file():
            found.append(_Found(dotted, base / "__init__.py"))
        elif base.with_suffix(".py").is_file():
            found.append(_Found(dotted, base.with_suffix(".py")))
        elif base.is_dir():
            found.append(_Found(dotted, None))  # a namespace package
        elif i == len(parts) and i > 1 and _is_attribute_parent(found):
            break  # the last name is an attribute of the module before it
        else:
            raise ArtifactError(
                f"{importer.path} imports {name}, but {dotted} is not a module under {root}"
            )
    return found


def _is_attribute_parent(found: list[_Found]) -> bool:
    return bool(found) and found[-1].path is not None


def _local_module(code_dir: Path, name: str) -> _Source | None:
    """A module of the function's own code directory, if ``name`` is one."""
    top = name.partition(".")[0]
    package = code_dir / top / "__init__.py"
    if package.is_file():
        return _Source(package.resolve(), top, is_package=True)
    module = (code_dir / top).with_suffix(".py")
    if module.is_file():
        return _Source(module.resolve(), top, is_package=False)
    return None


def _imported_names(source: _Source) -> list[tuple[str, bool]]:
    """Every absolute module name ``source`` imports, and whether the import is optional.

    ``from a import b`` yields both ``a`` and ``a.b``: ``b`` may be a submodule.
    """
    try:
        tree = ast.parse(source.path.read_bytes(), filename=str(source.path))
    except SyntaxError as e:
        raise ArtifactError(f"cannot parse {source.path}: {e}") from e
    collector = _ImportCollector(source)
    collector.visit(tree)
    return collector.names


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, source: _Source) -> None:
        self.source = source
        self.names: list[tuple[str, bool]] = []
        self._optional = 0

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        optional = any(_catches_import_error(h) for h in node.handlers)
        self._optional += optional
        for child in node.body:
            self.visit(child)
        self._optional -= optional
        for handler in node.handlers:
            self.visit(handler)
        for child in [*node.orelse, *node.finalbody]:
            self.visit(child)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node.module, node.level, node.lineno)
        if base == "__future__":
            return
        self._add(base)
        for alias in node.names:
            if alias.name != "*":
                self._add(f"{base}.{alias.name}")

    def _add(self, name: str) -> None:
        self.names.append((name, self._optional > 0))

    def _absolute(self, module: str | None, level: int, lineno: int) -> str:
        if level == 0:
            return module or ""
        parts = self.source.module.split(".")
        package = parts if self.source.is_package else parts[:-1]
        if level - 1 >= len(package) or not package:
            raise ArtifactError(
                f"{self.source.path}:{lineno}: relative import beyond the top-level package"
            )
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, module] if module else base)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS)
        or (isinstance(t, ast.Attribute) and t.attr in _IMPORT_ERRORS)
        for t in types
    )


__all__ = ["ImportClosure", "import_closure"]
