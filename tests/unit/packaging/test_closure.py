"""The ast import closure: what it follows, what it leaves out, and how it fails."""

from __future__ import annotations

from textwrap import dedent
from typing import TYPE_CHECKING

import pytest

from pipeline.local.template import load_template
from pipeline.packaging import ArtifactError, import_closure
from pipeline.packaging.functions import lambda_functions
from pipeline.packaging.lambda_artifacts import DEFAULT_TEMPLATE, SOURCE_ROOT

if TYPE_CHECKING:
    from pathlib import Path


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/core.py": "from .util import helper\nimport json\n",
            "pkg/util.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.typing_only import T
                def helper():
                    from pkg.lazy import late
                    import orjson
                try:
                    import ujson
                except ImportError:
                    ujson = None
            """,
            "pkg/lazy.py": "late = 1\n",
            "pkg/typing_only.py": "import moto\n",
            "pkg/unused.py": "import matplotlib\n",
            "pkg/sub/__init__.py": "from . import leaf\n",
            "pkg/sub/leaf.py": "from ..core import *\n",
            "pkg/ns/mod.py": "",
            "fn/app.py": "from pkg.core import helper\nfrom pkg.sub import leaf\nimport siblings\n",
            "fn/siblings.py": "import pkg.ns.mod\n",
        },
    )
    return tmp_path


def test_given_lazy_relative_and_sibling_imports_when_closed_then_each_is_followed(tree) -> None:
    closure = import_closure([tree / "fn/app.py"], root=tree, package="pkg")

    assert closure.modules == {
        "pkg", "pkg.core", "pkg.util", "pkg.lazy", "pkg.sub", "pkg.sub.leaf", "pkg.ns",
        "pkg.ns.mod",
    }  # fmt: skip
    assert tree / "pkg/ns/mod.py" in closure.files
    assert closure.third_party() == {"orjson"}
    assert "json" in closure.external


def test_given_type_checking_and_optional_imports_when_closed_then_they_are_left_out(tree) -> None:
    closure = import_closure([tree / "fn/app.py"], root=tree, package="pkg")

    assert "pkg.typing_only" not in closure.modules
    assert "pkg.unused" not in closure.modules
    assert not {"moto", "ujson", "matplotlib"} & closure.external


def test_given_an_import_of_a_missing_module_when_closed_then_the_importer_is_named(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"pkg/__init__.py": "", "fn/app.py": "import pkg.gone.deeper\n"})

    with pytest.raises(ArtifactError) as raised:
        import_closure([tmp_path / "fn/app.py"], root=tmp_path, package="pkg")

    assert str(raised.value) == (
        f"{tmp_path / 'fn/app.py'} imports pkg.gone.deeper, but pkg.gone is not a module under "
        f"{tmp_path}"
    )


def test_given_a_relative_import_above_the_package_when_closed_then_it_is_refused(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"pkg/__init__.py": "from ... import x\n", "fn/app.py": "import pkg\n"})

    with pytest.raises(ArtifactError) as raised:
        import_closure([tmp_path / "fn/app.py"], root=tmp_path, package="pkg")

    assert str(raised.value) == (
        f"{tmp_path / 'pkg/__init__.py'}:1: relative import beyond the top-level package"
    )


def test_given_the_template_handlers_when_closed_then_no_local_runtime_cli_or_heavy_library():
    functions = lambda_functions(load_template(DEFAULT_TEMPLATE), DEFAULT_TEMPLATE)
    handlers = sorted({f.handler_file for f in functions.values()})

    closure = import_closure(handlers, root=SOURCE_ROOT)

    packages = {m.split(".")[1] for m in closure.modules if m.count(".")}
    assert packages == {
        "api",
        "aws_errors",
        "contracts",
        "errors",
        "ingest",
        "lake",
        "settings",
        "strict_json",
    }
    assert closure.third_party() == {
        "aws_kinesis_agg", "aws_lambda_powertools", "boto3", "botocore", "fastjsonschema",
        "orjson", "pydantic",
    }  # fmt: skip
