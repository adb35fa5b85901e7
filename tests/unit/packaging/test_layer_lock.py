"""infra/layer/requirements.txt is an exact lock of requirements.in within pyproject's ranges."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from pipeline.packaging.requirements import LOCK, REQUIREMENTS_IN, normalise, read_lock

ROOT = Path(__file__).resolve().parents[3]


def requirements(path: Path) -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    found = [Requirement(line) for line in lines if line]
    return {normalise(r.name): r for r in found}


def test_given_the_lock_then_every_direct_requirement_is_pinned_within_its_range() -> None:
    pins = read_lock(LOCK)
    direct = requirements(REQUIREMENTS_IN)

    outside = {n: pins.get(n) for n, r in direct.items() if pins.get(n) not in r.specifier}
    assert outside == {}


def test_given_the_lock_then_every_pin_is_within_pyprojects_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {normalise(r.name): r for r in map(Requirement, project["dependencies"])}
    pins = read_lock(LOCK)

    outside = {n: v for n, v in pins.items() if n in ranges and v not in ranges[n].specifier}
    assert outside == {}
    assert set(requirements(REQUIREMENTS_IN)) <= set(ranges)


def test_given_the_handlers_then_the_layer_pins_boto3_and_not_the_tracer_sdk() -> None:
    pins = read_lock(LOCK)

    assert {"boto3", "botocore"} <= set(pins)
    assert "aws-xray-sdk" not in pins
    assert not any(r.extras for r in requirements(REQUIREMENTS_IN).values())
