"""A provisioned local stack: names from the template, a state file, the environment.

``fmcg local up`` writes the state file; every other ``fmcg`` command reads it to find the
emulator and the resource names, so nothing keeps a second list of names. Every command
trusts it, so it is a private file (:mod:`pipeline.local.private_files`) and is checked as
it is read: the endpoint a loopback URL, the pid a process id (never 0 or -1, which would
signal a whole process group or every process).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigurationError
from pipeline.local.emulator import aws_session, local_environment, loopback_url
from pipeline.local.private_files import private_dir, read_private, write_private
from pipeline.local.provision import Resource, function_environment, provision
from pipeline.local.template import DEFAULT_TEMPLATE, ResolveContext, load_template, resolve

if TYPE_CHECKING:
    import boto3

STATE_DIR_VARIABLE = "FMCG_HOME"
DEFAULT_STACK_NAME = "fmcg"


def state_dir() -> Path:
    """Where ``fmcg local`` keeps its state file and logs (``$FMCG_HOME`` or ``./.fmcg``).

    Absolute but not resolved: resolving would follow a symlink planted at ``.fmcg``, which
    :func:`~pipeline.local.private_files.private_dir` refuses instead.
    """
    return Path(os.environ.get(STATE_DIR_VARIABLE, ".fmcg")).absolute()


def private_state_dir() -> Path:
    """:func:`state_dir`, created 0700 (or checked to be this user's own directory)."""
    return private_dir(state_dir())


#: What every name the template derives from the stack name accepts: S3 buckets (lower case,
#: at most 63 characters, the longest being ``<stack>-access-logs-<account>-<region>``).
_STACK_NAME = re.compile(r"[a-z][a-z0-9-]{0,27}")


def check_stack_name(name: str) -> str:
    """``name`` if every resource name built from it is valid, else ConfigurationError."""
    if not _STACK_NAME.fullmatch(name) or name.endswith("-"):
        raise ConfigurationError(
            f"stack name {name!r} must be 1 to 28 lower-case letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen (bucket names derive from it)"
        )
    return name


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@dataclass
class LocalStack:
    """The resources of one template provisioned on one emulator."""

    endpoint_url: str
    stack_name: str
    template_path: str
    parameters: dict[str, Any]
    resources: dict[str, Resource]
    pid: int | None = None
    _template: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        endpoint_url: str,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        template_path: Path | str = DEFAULT_TEMPLATE,
        parameters: dict[str, Any] | None = None,
        pid: int | None = None,
    ) -> LocalStack:
        """Provision every resource of the template on the emulator at ``endpoint_url``."""
        check_stack_name(stack_name)
        ctx, resources = provision(
            aws_session(endpoint_url),
            stack_name=stack_name,
            template_path=template_path,
            parameters=parameters,
        )
        return cls(
            endpoint_url,
            stack_name,
            str(Path(template_path).resolve()),
            ctx.parameters,
            resources,
            pid,
        )

    # ------------------------------------------------------------------ names
    @property
    def template(self) -> dict[str, Any]:
        if self._template is None:
            self._template = load_template(self.template_path)
        return self._template

    def context(self) -> ResolveContext:
        return ResolveContext(
            stack_name=self.stack_name,
            parameters=dict(self.parameters),
            refs={lid: r.ref for lid, r in self.resources.items()},
            attributes={lid: dict(r.attributes) for lid, r in self.resources.items()},
        )

    def ref(self, logical_id: str) -> str:
        """The ``Ref`` value of a resource (a name, a URL or an id)."""
        if logical_id not in self.resources:
            raise ConfigurationError(f"no resource {logical_id} in {self.template_path}")
        return self.resources[logical_id].ref

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The variables the template sets on ``logical_id``, resolved to local names."""
        return function_environment(self.template, self.context(), logical_id)

    def job_arguments(self, logical_id: str) -> dict[str, str]:
        """A Glue job's ``DefaultArguments`` resolved to local names (``--name`` keys)."""
        props = self.template["Resources"][logical_id]["Properties"]
        args = resolve(props.get("DefaultArguments", {}), self.context())
        return {k: str(v) for k, v in args.items()}

    def names(self) -> dict[str, str]:
        """Every name the project uses: the functions' variables and the outputs."""
        ctx = self.context()
        names: dict[str, str] = {}
        for logical_id, spec in self.template["Resources"].items():
            if spec["Type"] == "AWS::Serverless::Function":
                env = function_environment(self.template, ctx, logical_id)
                names.update({k: v for k, v in env.items() if not k.startswith("POWERTOOLS")})
        for output, spec in self.template.get("Outputs", {}).items():
            names[_snake(output)] = str(resolve(spec["Value"], ctx))
        return dict(sorted(names.items()))

    def environment(self) -> dict[str, str]:
        """What ``fmcg local status`` exports: the endpoint, credentials and every name."""
        return {**local_environment(self.endpoint_url), **self.names()}

    def session(self) -> boto3.session.Session:
        return aws_session(self.endpoint_url)

    # ------------------------------------------------------------------ state
    def save(self, path: Path) -> None:
        """Write the state file: 0600, in a 0700 directory, replacing it atomically."""
        body = {
            "endpoint_url": self.endpoint_url,
            "stack_name": self.stack_name,
            "template_path": self.template_path,
            "parameters": self.parameters,
            "pid": self.pid,
            "resources": {lid: r.__dict__ for lid, r in self.resources.items()},
        }
        write_private(path, json.dumps(body, indent=2, sort_keys=True).encode())

    @classmethod
    def load(cls, path: Path) -> LocalStack:
        """Read a state file; :class:`ConfigurationError` if missing, unsafe or malformed."""
        try:
            text = read_private(path)
        except FileNotFoundError:
            raise ConfigurationError(
                f"no local stack: {path} is missing (run `fmcg local up`)"
            ) from None
        try:
            body = json.loads(text)
            resources = {lid: Resource(**r) for lid, r in body.pop("resources").items()}
            stack = cls(resources=resources, **body)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ConfigurationError(
                f"{path} is not a local stack state file ({e}); `fmcg local up` writes one"
            ) from e
        try:
            loopback_url(stack.endpoint_url)
        except ConfigurationError as e:
            raise ConfigurationError(f"{path}: {e}") from None
        pid = stack.pid
        if pid is not None and (type(pid) is not int or pid <= 1):
            raise ConfigurationError(f"{path}: pid {pid!r} is not the id of an emulator process")
        return stack
