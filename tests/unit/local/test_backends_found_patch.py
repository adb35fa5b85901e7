"""moto's server finds a request's backend once per host name (``emulator_patches``).

moto's modules in this process, no server: the patched lookups must give moto's own
answers and must not read the package directory again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from pipeline.local.emulator_patches import backends_found_once

if TYPE_CHECKING:
    import pytest


def test_given_the_patch_then_the_same_backends_and_no_directory_listing_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    lookup = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", lookup)
    unpatched = list(backends.list_of_moto_modules())
    hosts = [
        "s3",
        "glue",
        "no-such",
        "s3.us-east-1.amazonaws.com",
        "glue.us-east-1.amazonaws.com",
        "kinesis.us-east-1.amazonaws.com",
    ]
    plain = DomainDispatcherApplication(create_app=lambda service: service)
    expected = [plain.get_backend_for_host(h) for h in hosts]
    backends_found_once()
    listed: list[str] = []
    original = os.listdir

    def counting(path: Any = ".") -> list[str]:
        listed.append(str(path))
        return original(path)

    monkeypatch.setattr(os, "listdir", counting)
    app = DomainDispatcherApplication(create_app=lambda service: service)

    found = [app.get_backend_for_host(h) for h in hosts + hosts]

    assert list(backends.list_of_moto_modules()) == unpatched
    assert {"s3", "glue", "kinesis", "dynamodb"} <= set(unpatched)
    assert found == expected + expected
    assert expected[:3] == ["s3", "glue", None]
    assert expected[3:] == ["s3", "glue", "kinesis"]
    assert listed == []
