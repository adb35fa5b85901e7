"""Deployment artifacts, built by the project: ``python -m pipeline.packaging --out build``.

The Lambda half (:mod:`pipeline.packaging.lambda_artifacts`) builds every function's code
and one layer holding only what the handlers import, for the template's runtime and
architecture, without Docker and without a matching local Python; the local runtime runs
a host-platform copy of the same tree. The Glue half lives in ``glue_artifacts``.
"""

from pipeline.packaging.closure import ImportClosure, import_closure
from pipeline.packaging.exceptions import ArtifactError, ArtifactTooLarge
from pipeline.packaging.functions import FunctionSpec, function_spec, lambda_functions
from pipeline.packaging.lambda_artifacts import (
    BUILD_DIR_VARIABLE,
    DEFAULT_BUILD_DIR,
    LambdaArtifacts,
    build_lambda_artifacts,
    local_lambda_artifacts,
)
from pipeline.packaging.limits import LambdaLimits

__all__ = [
    "BUILD_DIR_VARIABLE",
    "DEFAULT_BUILD_DIR",
    "ArtifactError",
    "ArtifactTooLarge",
    "FunctionSpec",
    "ImportClosure",
    "LambdaArtifacts",
    "LambdaLimits",
    "build_lambda_artifacts",
    "function_spec",
    "import_closure",
    "lambda_functions",
    "local_lambda_artifacts",
]
