"""Read the SAM template and resolve its intrinsic functions against provisioned resources.

Only what provisioning and ``local invoke`` need: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``Fn::Join``, ``Fn::Split`` and ``Fn::Select``, in both the short (``!Ref``) and the long
form. A reference to something not provisioned yet raises :class:`Unresolved`, which the
provisioner uses to order resources by their dependencies.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolved(Exception):  # noqa: N818 - control flow, not an error the user sees
    """A reference to a resource that has not been provisioned yet."""

    def __init__(self, logical_id: str) -> None:
        super().__init__(logical_id)
        self.logical_id = logical_id


class _Loader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short tags into their long form."""


# libyaml's parser where PyYAML has it: the template parses in a tenth of the time, and a
# test run provisions it hundreds of times. Its errors are worded differently, so a
# template it refuses is parsed again by PyYAML's own parser for the message.
class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """:class:`_Loader` on libyaml."""


def _construct(tag: str) -> Any:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return build


for _tag in (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "Split",
    "Select",
    "If",
    "Equals",
    "Not",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Condition",
    "Cidr",
    "And",
    "Or",
):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))
    _FastLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path | str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template into plain dicts (tags in long form).

    A copy of the last parse while the file is unchanged (same size and modification
    time): every stack a process provisions reads the same template.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"template not found: {path}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _PARSED:
        _PARSED.clear()
        _PARSED[key] = _parse(path)
    return copy.deepcopy(_PARSED[key])


_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}


def _parse(path: Path) -> dict[str, Any]:
    try:
        try:
            with path.open(encoding="utf-8") as f:
                doc = yaml.load(f, Loader=_FastLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError:
            with path.open(encoding="utf-8") as f:
                doc = yaml.load(f, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problem = " ".join(str(e).split())
        raise ConfigurationError(f"{path} is not a YAML template: {problem}") from e
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise ConfigurationError(f"{path} is not a CloudFormation template")
    return doc


@dataclass
class ResolveContext:
    """What intrinsic functions resolve against: parameters and provisioned resources."""

    stack_name: str
    parameters: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }

    def ref(self, name: str) -> str:
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name])
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        attrs = self.attributes.get(logical_id)
        if attrs is None:
            raise Unresolved(logical_id)
        if attribute not in attrs:
            raise ConfigurationError(f"{logical_id} has no attribute {attribute} locally")
        return attrs[attribute]


def resolve(value: Any, ctx: ResolveContext) -> Any:
    """Resolve every intrinsic function inside ``value``."""
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return ctx.ref(arg)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return ctx.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            return _sub(arg, ctx)
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(str(v) for v in resolve(items, ctx))
        if key == "Fn::Split":
            sep, text = arg
            return str(resolve(text, ctx)).split(sep)
        if key == "Fn::Select":
            index, items = arg
            return resolve(items, ctx)[int(resolve(index, ctx))]
    return {k: resolve(v, ctx) for k, v in value.items()}


def _sub(arg: Any, ctx: ResolveContext) -> str:
    if isinstance(arg, list):
        text, local = arg[0], {k: str(resolve(v, ctx)) for k, v in arg[1].items()}
    else:
        text, local = arg, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in local:
            return local[name]
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return ctx.get_att(logical_id, attribute)
        return ctx.ref(name)

    # "${!literal}" is CloudFormation's escape for a literal "${literal}".
    return _SUB.sub(replace, str(text)).replace("${!", "${")


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template's parameters with their defaults."""
    return {
        name: spec.get("Default")
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }
