"""The Lambda artifacts built from a clean directory: what the layer holds, and that every
template handler imports from its artifact alone, as Lambda would load it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.local.invoke import FunctionError, LocalFunction, load_handler
from pipeline.packaging import LambdaArtifacts, build_lambda_artifacts, local_lambda_artifacts
from pipeline.packaging.limits import MB, tree_files
from pipeline.packaging.requirements import LOCK, installed_distributions, read_lock

ROOT = Path(__file__).resolve().parents[3]
#: What the functions never import, so what the layer must not hold.
ABSENT = (
    "pipeline/local/",
    "pipeline/cli/",
    "pipeline/demo.py",
    "pipeline/faults/",
    "pipeline/compaction/",
    "pipeline/forecasting/",
    "moto/",
    "hypercorn/",
    "matplotlib/",
    "pandas/",
    "pyarrow/",
    "aws_xray_sdk/",
)
#: Imports the handler process has loaded that it must not have.
PROBE = """
import json, sys
code, layer, module, function = sys.argv[1:]
sys.path[:0] = [code, layer]
handler = getattr(__import__(module), function)
heavy = {"moto", "hypercorn", "matplotlib", "pandas", "pyarrow", "numpy"}
print(json.dumps({
    "handler": sys.modules[module].__file__,
    "pipeline": sys.modules["pipeline"].__file__,
    "callable": callable(handler),
    "unwanted": sorted(m for m in sys.modules if m.split(".")[0] in heavy
                       or m.startswith(("pipeline.local", "pipeline.cli"))),
}))
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def aws(out: Path) -> LambdaArtifacts:
    return build_lambda_artifacts(out)


@pytest.fixture(scope="module")
def local(out: Path) -> LambdaArtifacts:
    return local_lambda_artifacts(out)


def listing(artifacts: LambdaArtifacts) -> list[str]:
    files = tree_files(artifacts.layer_python)
    return [p.as_posix() for p in files if "__pycache__" not in p.parts]


def test_given_a_clean_build_then_the_layer_holds_none_of_the_local_runtime_cli_or_heavy_libs(
    aws: LambdaArtifacts, local: LambdaArtifacts
) -> None:
    for artifacts in (aws, local):
        files = listing(artifacts)
        assert [f for f in files if f.startswith(ABSENT)] == []
        assert {"pipeline/ingest/core.py", "pipeline/api/routes.py"} <= set(files)
        assert "pipeline/contracts/sales_event_v1.schema.json" in files
    pipeline_files = [f for f in listing(aws) if f.startswith("pipeline/")]
    assert pipeline_files == [f for f in listing(local) if f.startswith("pipeline/")]


def test_given_the_lambda_build_then_it_is_the_lock_for_python_3_12_on_arm64(
    aws: LambdaArtifacts,
) -> None:
    files = listing(aws)

    assert installed_distributions(aws.layer_python) == read_lock(LOCK)
    native = [f for f in files if f.endswith(".so")]
    assert native
    assert all("x86_64" not in f and "311" not in f for f in native)
    assert "pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so" in files
    assert not [f for f in files if f.endswith(".pyc")]


def test_given_the_lambda_build_then_each_zip_is_within_lambdas_limits(
    aws: LambdaArtifacts,
) -> None:
    layer_zip = aws.root / "layer.zip"
    for logical_id in aws.functions:
        code = aws.code_dir(logical_id)
        assert sorted(p.name for p in code.iterdir()) == ["__init__.py", "app.py"]
        assert (aws.root / f"{logical_id}.zip").stat().st_size < MB
    assert layer_zip.stat().st_size < 50 * MB


@pytest.mark.parametrize(
    "logical_id", ["IngestStreamFunction", "GetForecastFunction", "AdminApiFunction"]
)
def test_given_the_built_artifact_alone_when_its_handler_is_imported_then_it_loads_light(
    local: LambdaArtifacts, logical_id: str
) -> None:
    spec = local.functions[logical_id]
    code = local.code_dir(logical_id)
    module, _, function = spec.handler.rpartition(".")
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        **dict.fromkeys(["RAW_BUCKET", "INVENTORY_TABLE", "FORECAST_TABLE", "ORDERS_TABLE"], "x"),
        **dict.fromkeys(["USER_POOL_ID", "CURATED_BUCKET"], "x"),
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(code), str(local.layer_python), module,
         function],
        capture_output=True, text=True, check=False, timeout=120, env=env, cwd=code,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {
        "handler": str(code / "app.py"),
        "pipeline": str(local.layer_python / "pipeline" / "__init__.py"),
        "callable": True,
        "unwanted": [],
    }


def test_given_a_module_missing_from_the_layer_when_invoked_then_it_fails_naming_it(
    stack, out: Path, local: LambdaArtifacts, tmp_path: Path
) -> None:
    broken = tmp_path / "python"
    shutil.copytree(local.layer_python, broken, symlinks=True)
    (broken / "pipeline" / "lake" / "layout.py").unlink()
    built = load_handler(stack, "IngestStreamFunction", build_dir=out)
    function = LocalFunction(dataclasses.replace(built.spec, layers=(broken,)))

    with function, pytest.raises(FunctionError) as raised:
        function({"Records": []})

    assert raised.value.error_type == "Runtime.ImportModuleError"
    assert raised.value.error_message == (
        "Unable to import module 'app': No module named 'pipeline.lake.layout'"
    )


def test_given_a_changed_handler_when_loaded_again_then_the_local_build_is_rebuilt_once(
    out: Path, local: LambdaArtifacts, tmp_path: Path
) -> None:
    # A copy of the template and the functions' code: CodeUri is relative to the template.
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    shutil.copytree(ROOT / "stream_consumers", tmp_path / "stream_consumers")
    template = tmp_path / "infra" / "template.yaml"

    same = local_lambda_artifacts(out, template_path=template)
    with (tmp_path / "stream_consumers" / "get_forecast" / "app.py").open("a") as f:
        f.write("\nEDITED = True\n")
    edited = local_lambda_artifacts(out, template_path=template)

    assert same.root == local.root
    assert edited.root != local.root
    assert "EDITED = True" in (edited.code_dir("GetForecastFunction") / "app.py").read_text()
    assert local_lambda_artifacts(out, template_path=template).root == edited.root
