"""Typed settings, resolved once from the environment variables the template sets.

The variable names are constants here and nowhere else. ``infra/template.yaml`` sets them
on each function (and the local runtime sets the same ones when it invokes a handler), so
the same code runs on AWS and on the embedded emulator: only values differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

SALES_STREAM_NAME = "SALES_STREAM_NAME"
RAW_BUCKET = "RAW_BUCKET"
CURATED_BUCKET = "CURATED_BUCKET"
FORECAST_TABLE = "FORECAST_TABLE"
ORDERS_TABLE = "ORDERS_TABLE"
INVENTORY_TABLE = "INVENTORY_TABLE"
GLUE_DATABASE = "GLUE_DATABASE"
ATHENA_WORKGROUP = "ATHENA_WORKGROUP"
USER_POOL_ID = "USER_POOL_ID"
USER_POOL_CLIENT_ID = "USER_POOL_CLIENT_ID"
#: The bucket of the ingest mapping's failed batches (``fmcg replay-failed`` on AWS).
FAILED_BATCHES_BUCKET = "FAILED_BATCHES_BUCKET"

#: The one interface the local runtime binds (emulator, gateway) and a local Spark driver uses.
LOOPBACK_HOST = "127.0.0.1"

ALL_NAMES = (
    SALES_STREAM_NAME,
    RAW_BUCKET,
    CURATED_BUCKET,
    FORECAST_TABLE,
    ORDERS_TABLE,
    INVENTORY_TABLE,
    GLUE_DATABASE,
    ATHENA_WORKGROUP,
    USER_POOL_ID,
    USER_POOL_CLIENT_ID,
    FAILED_BATCHES_BUCKET,
)


def require(env: Mapping[str, str], name: str) -> str:
    """Return ``env[name]`` or raise a :class:`ConfigurationError` naming the variable."""
    value = env.get(name, "")
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class IngestSettings:
    """What the stream consumer needs: where raw and quarantined records go."""

    raw_bucket: str
    inventory_table: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        env = os.environ if env is None else env
        return cls(raw_bucket=require(env, RAW_BUCKET), inventory_table=env.get(INVENTORY_TABLE))


@dataclass(frozen=True)
class ApiSettings:
    """What the API needs: the tables it reads and writes and the user pool it manages."""

    forecast_table: str
    orders_table: str | None = None
    user_pool_id: str | None = None
    raw_bucket: str | None = None
    curated_bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        return cls(
            forecast_table=require(env, FORECAST_TABLE),
            orders_table=env.get(ORDERS_TABLE) or None,
            user_pool_id=env.get(USER_POOL_ID) or None,
            raw_bucket=env.get(RAW_BUCKET) or None,
            curated_bucket=env.get(CURATED_BUCKET) or None,
        )
