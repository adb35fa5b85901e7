"""The template's Lambda functions and layer as the build and the local runtime need them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import ConfigurationError
from pipeline.packaging.exceptions import ArtifactError

if TYPE_CHECKING:
    from pathlib import Path

FUNCTION_TYPE: Final = "AWS::Serverless::Function"
LAYER_TYPE: Final = "AWS::Serverless::LayerVersion"
#: Lambda's defaults where neither the function nor the template's Globals set a value.
DEFAULT_TIMEOUT_S: Final = 3
DEFAULT_MEMORY_MB: Final = 128
DEFAULT_ARCHITECTURE: Final = "x86_64"


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function``, Globals merged in."""

    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    architecture: str
    timeout_s: int
    memory_mb: int
    layers: tuple[str, ...]

    @property
    def handler_module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def handler_file(self) -> Path:
        """The source of the handler module inside the code directory."""
        return self.code_dir / (self.handler_module.replace(".", "/") + ".py")


def lambda_functions(template: dict[str, Any], template_path: Path) -> dict[str, FunctionSpec]:
    """Every function of the template, by logical id."""
    return {
        logical_id: function_spec(template, template_path, logical_id)
        for logical_id, spec in template["Resources"].items()
        if spec.get("Type") == FUNCTION_TYPE
    }


def function_spec(template: dict[str, Any], template_path: Path, logical_id: str) -> FunctionSpec:
    """One function of the template; a ``ConfigurationError`` if it is not one."""
    resource = template["Resources"].get(logical_id)
    if resource is None or resource.get("Type") != FUNCTION_TYPE:
        raise ConfigurationError(f"{logical_id} is not a function in {template_path}")
    props = {**template.get("Globals", {}).get("Function", {}), **resource.get("Properties", {})}
    for required in ("CodeUri", "Handler", "Runtime"):
        if not isinstance(props.get(required), str):
            raise ArtifactError(f"{logical_id} has no {required} string in {template_path}")
    architectures = props.get("Architectures", [DEFAULT_ARCHITECTURE])
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=(template_path.parent / props["CodeUri"]).resolve(),
        handler=props["Handler"],
        runtime=props["Runtime"],
        architecture=str(architectures[0]),
        timeout_s=int(props.get("Timeout", DEFAULT_TIMEOUT_S)),
        memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
        layers=tuple(_layer_ref(logical_id, layer) for layer in props.get("Layers", [])),
    )


def layer_ids(template: dict[str, Any]) -> list[str]:
    """The logical ids of the template's layers."""
    return [lid for lid, spec in template["Resources"].items() if spec.get("Type") == LAYER_TYPE]


def _layer_ref(function: str, layer: Any) -> str:
    # Only layers of this template can be built; an ARN of another stack's layer cannot.
    if isinstance(layer, dict) and isinstance(layer.get("Ref"), str):
        return str(layer["Ref"])
    raise ArtifactError(f"{function} uses layer {layer!r}, which is not a layer of the template")


__all__ = ["FunctionSpec", "function_spec", "lambda_functions", "layer_ids"]
