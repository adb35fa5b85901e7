"""moto's server routes a request by its backend names, listed once (``emulator_patches``).

moto's modules in this process, no server: the patched listing must name the same backends
as moto's own and must not read the package directory again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from pipeline.local.emulator_patches import backend_names_once

if TYPE_CHECKING:
    import pytest


def test_given_the_patch_then_the_same_backends_and_no_directory_listing_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    unpatched = list(backends.list_of_moto_modules())
    backend_names_once()
    listed: list[str] = []
    original = os.listdir

    def counting(path: Any = ".") -> list[str]:
        listed.append(str(path))
        return original(path)

    monkeypatch.setattr(os, "listdir", counting)
    app = DomainDispatcherApplication(create_app=lambda service: service)

    found = [app.get_backend_for_host(host) for host in ("s3", "glue", "kinesis", "no-such")]

    assert list(backends.list_of_moto_modules()) == unpatched
    assert {"s3", "glue", "kinesis", "dynamodb"} <= set(unpatched)
    assert found == ["s3", "glue", "kinesis", None]
    assert listed == []
