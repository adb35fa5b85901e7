"""Build the Lambda artifacts: every function's code and the one layer they share.

Layout under ``<out>/lambda/`` (what the SAM makefile targets copy, and what a direct upload
would send):

- ``<LogicalId>/`` and ``<LogicalId>.zip``: the function's ``CodeUri`` as it is;
- ``layer/python/`` and ``layer.zip``: the handlers' import closure over the ``pipeline``
  package (:mod:`pipeline.packaging.closure`) and the packages of the lock, installed for
  the template's ``Runtime`` and ``Architectures``.

:func:`local_lambda_artifacts` builds the same tree for the running interpreter under
``<out>/local/lambda/<digest>/``; the local runtime loads functions from there and from
nowhere else. Both are cached: the digest covers the lock, the closure's files and the
functions' code, so an unchanged input rebuilds nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pipeline.packaging.closure import ImportClosure, import_closure
from pipeline.packaging.exceptions import ArtifactError
from pipeline.packaging.functions import FunctionSpec, lambda_functions, layer_ids
from pipeline.packaging.limits import (
    LambdaLimits,
    check_unzipped,
    check_zipped,
    tree_size,
    zip_tree,
)
from pipeline.packaging.requirements import LOCK, TargetPlatform, install

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

logger = logging.getLogger(__name__)

PACKAGE: Final = "pipeline"
#: The directory that holds the ``pipeline`` package and ``pyproject.toml``.
SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE: Final = SOURCE_ROOT / "infra" / "template.yaml"
DEFAULT_BUILD_DIR: Final = SOURCE_ROOT / "build"
BUILD_DIR_VARIABLE: Final = "FMCG_BUILD_DIR"
LAYER_DIR: Final = "layer"
#: Local builds kept besides the newest (a running worker may still import from one).
_KEEP_LOCAL_BUILDS: Final = 3
#: Part of every digest: bump it when the layout changes, to invalidate every cache.
_FORMAT: Final = "lambda-artifacts-1"
_NOT_SHIPPED: Final = ("__pycache__", "*.pyc", "Makefile")


@dataclass(frozen=True)
class LambdaArtifacts:
    """A built tree: one code directory per function and the layer."""

    root: Path
    functions: Mapping[str, FunctionSpec]

    @property
    def layer(self) -> Path:
        return self.root / LAYER_DIR

    @property
    def layer_python(self) -> Path:
        """What Lambda mounts as ``/opt/python``."""
        return self.layer / "python"

    def code_dir(self, logical_id: str) -> Path:
        """What Lambda mounts as ``/var/task`` for ``logical_id``."""
        if logical_id not in self.functions:
            raise ArtifactError(f"no function {logical_id} in the built artifacts")
        return self.root / logical_id


@dataclass(frozen=True)
class _Inputs:
    functions: dict[str, FunctionSpec]
    closure: ImportClosure
    data_files: tuple[Path, ...]
    lock: Path
    platform: TargetPlatform

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(f"{_FORMAT}\0{self.platform.key}\0".encode())
        h.update(self.lock.read_bytes())
        for path in sorted({*self.closure.files, *self.data_files}):
            _hash_file(h, path.relative_to(SOURCE_ROOT).as_posix(), path)
        for spec in sorted(self.functions.values(), key=lambda s: s.logical_id):
            h.update(f"\0{spec.logical_id}\0{spec.handler}\0".encode())
            for path in _shipped_files(spec.code_dir):
                _hash_file(h, path.relative_to(spec.code_dir).as_posix(), path)
        return h.hexdigest()


def build_lambda_artifacts(
    out: Path,
    *,
    template_path: Path = DEFAULT_TEMPLATE,
    lock: Path = LOCK,
    limits: LambdaLimits | None = None,
) -> LambdaArtifacts:
    """Build ``out/lambda`` for the template's runtime and architecture; check the limits."""
    inputs = _read_inputs(template_path, lock, platform=None)
    dest = out / "lambda"
    stamp = dest / ".digest"
    digest = inputs.digest()
    artifacts = LambdaArtifacts(dest, inputs.functions)
    with _exclusive(out):
        if stamp.is_file() and stamp.read_text() == digest:
            logger.info("%s is up to date", dest)
            return artifacts
        staging = _fresh(out / "lambda.tmp")
        _assemble(staging, inputs, _dependencies(out, inputs))
        _check_sizes(LambdaArtifacts(staging, inputs.functions), limits or LambdaLimits())
        (staging / ".digest").write_text(digest)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return artifacts


def local_lambda_artifacts(
    build_dir: Path | None = None,
    *,
    template_path: Path = DEFAULT_TEMPLATE,
    lock: Path = LOCK,
) -> LambdaArtifacts:
    """The artifacts for the running interpreter, built first if missing or stale.

    ``build_dir``: explicit, else ``$FMCG_BUILD_DIR``, else ``build/`` of the source tree.
    """
    out = build_dir or Path(os.environ.get(BUILD_DIR_VARIABLE) or DEFAULT_BUILD_DIR)
    inputs = _read_inputs(template_path, lock, platform=TargetPlatform())
    digest = inputs.digest()
    builds = out / "local" / "lambda"
    dest = builds / digest[:16]
    artifacts = LambdaArtifacts(dest, inputs.functions)
    if dest.is_dir():  # a build directory only gets its name once it is complete
        return artifacts
    with _exclusive(out):
        if dest.is_dir():
            return artifacts
        logger.info("building the local Lambda artifacts in %s", dest)
        staging = _fresh(builds / f"{digest[:16]}.tmp")
        _assemble(staging, inputs, _dependencies(out, inputs))
        staging.rename(dest)
        _prune(builds, keep=dest)
    return artifacts


# ---------------------------------------------------------------------- inputs
def _read_inputs(template_path: Path, lock: Path, platform: TargetPlatform | None) -> _Inputs:
    from pipeline.local.template import load_template

    template_path = template_path.resolve()
    template = load_template(template_path)
    functions = lambda_functions(template, template_path)
    if not functions:
        raise ArtifactError(f"{template_path} declares no function")
    layers = layer_ids(template)
    if len(layers) != 1:
        raise ArtifactError(f"{template_path} declares {len(layers)} layers; expected 1")
    for spec in functions.values():
        if spec.layers != (layers[0],):
            raise ArtifactError(f"{spec.logical_id} must use exactly the layer {layers[0]}")
        if not spec.handler_file.is_file():
            raise ArtifactError(
                f"the handler {spec.handler} of {spec.logical_id} is not in {spec.code_dir}"
            )
    targets = {(s.runtime, s.architecture) for s in functions.values()}
    if len(targets) != 1:
        raise ArtifactError(f"one layer cannot serve several runtimes: {sorted(targets)}")
    if platform is None:
        platform = TargetPlatform.lambda_runtime(*targets.pop())
    closure = import_closure(
        sorted({s.handler_file for s in functions.values()}), root=SOURCE_ROOT, package=PACKAGE
    )
    return _Inputs(functions, closure, _data_files(closure), lock.resolve(), platform)


def _data_files(closure: ImportClosure) -> tuple[Path, ...]:
    """The package data (pyproject's ``package-data``) of the packages in the closure."""
    pyproject = SOURCE_ROOT / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())
    patterns = config.get("tool", {}).get("setuptools", {}).get("package-data", {}).get(PACKAGE)
    found: list[Path] = []
    for pattern in patterns or []:
        for path in (SOURCE_ROOT / PACKAGE).glob(pattern):
            owner = ".".join(path.parent.relative_to(SOURCE_ROOT).parts)
            if path.is_file() and owner in closure.modules:
                found.append(path)
    return tuple(sorted(found))


def _shipped_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
        and p.name != "Makefile"
    )


def _hash_file(h: hashlib._Hash, name: str, path: Path) -> None:
    h.update(f"\0{name}\0".encode())
    h.update(path.read_bytes())


# ---------------------------------------------------------------------- building
def _dependencies(out: Path, inputs: _Inputs) -> Path:
    """The lock installed for the platform, cached by the lock's content."""
    key = hashlib.sha256(inputs.lock.read_bytes() + inputs.platform.key.encode()).hexdigest()
    cached = out / "cache" / "deps" / f"{inputs.platform.key}-{key[:16]}"
    if cached.is_dir():
        return cached
    logger.info("installing %s for %s", inputs.lock, inputs.platform.key)
    staging = _fresh(cached.with_name(cached.name + ".tmp"))
    install(staging, inputs.platform, inputs.lock)
    # Console scripts name this machine's interpreter in their shebang: useless in a layer.
    shutil.rmtree(staging / "bin", ignore_errors=True)
    staging.rename(cached)
    return cached


def _assemble(dest: Path, inputs: _Inputs, dependencies: Path) -> None:
    for spec in inputs.functions.values():
        shutil.copytree(
            spec.code_dir, dest / spec.logical_id, ignore=shutil.ignore_patterns(*_NOT_SHIPPED)
        )
    python = dest / LAYER_DIR / "python"
    shutil.copytree(dependencies, python, copy_function=_link_or_copy)
    for path in sorted({*inputs.closure.files, *inputs.data_files}):
        target = python / path.relative_to(SOURCE_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    _check_imports(inputs, python)


def _check_imports(inputs: _Inputs, python: Path) -> None:
    """Every third-party module the handlers import is in the layer: else it fails on AWS."""
    missing = sorted(
        name
        for name in inputs.closure.third_party()
        if not (
            (python / name).is_dir()
            or (python / f"{name}.py").is_file()
            or any(python.glob(f"{name}.*.so"))
        )
    )
    if missing:
        raise ArtifactError(
            f"the functions import {', '.join(missing)}, which no package of {inputs.lock} "
            "provides: add it to requirements.in and re-lock (python -m pipeline.packaging --lock)"
        )


def _check_sizes(artifacts: LambdaArtifacts, limits: LambdaLimits) -> None:
    layer_bytes = tree_size(artifacts.layer)
    layer_zip = artifacts.root / f"{LAYER_DIR}.zip"
    check_zipped(layer_zip, zip_tree(artifacts.layer, layer_zip), limits)
    for logical_id in artifacts.functions:
        code = artifacts.code_dir(logical_id)
        check_unzipped(logical_id, tree_size(code), {LAYER_DIR: layer_bytes}, limits)
        archive = artifacts.root / f"{logical_id}.zip"
        check_zipped(archive, zip_tree(code, archive), limits)


def _link_or_copy(src: str, dst: str) -> None:
    # Hard links: the cached packages are never modified, and a link costs no copy.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _prune(builds: Path, keep: Path) -> None:
    finished = [p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".tmp")]
    finished.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in finished[_KEEP_LOCAL_BUILDS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One build at a time per build directory (parallel test workers share it)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lambda-build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = [
    "BUILD_DIR_VARIABLE",
    "DEFAULT_BUILD_DIR",
    "LAYER_DIR",
    "LambdaArtifacts",
    "build_lambda_artifacts",
    "local_lambda_artifacts",
]
