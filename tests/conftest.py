"""Shared fixtures: one emulator per test session, one freshly provisioned stack per test.

The emulator is the same moto server ``fmcg local up`` starts, reached over HTTP. Tests are
isolated by stack name: every test provisions the whole template under its own name, so
their streams, buckets and tables never meet.
"""

from __future__ import annotations

import os
import uuid
from itertools import islice
from typing import TYPE_CHECKING

# Two test workers share two cores, and LightGBM's OpenMP threads spin while they wait
# for work: with the other worker busy, the M5 backtest burnt 3.4x the CPU of waiting
# passively (66.7 s against 19.7 s user time, the same results). Set before any test
# loads the OpenMP runtime; the jobs' and Spark's subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from pipeline.local.emulator import local_environment, start_server, stop_server
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

# Same commit, same result: every run is derandomized (examples follow from each test's
# source) unless it names a seed or the fuzz profile. Hypothesis' own "ci" profile is only
# active where a CI variable is set, so a developer's `make test` would otherwise draw
# fresh examples and could disagree with CI.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# `--hypothesis-seed=N`: that seed's examples exactly (derandomize would ignore the seed).
# No database either: replayed failures from earlier runs would change what N means.
settings.register_profile("seeded", settings.get_profile("ci"), derandomize=False, database=None)
# `make fuzz`: fresh seeds and more examples; failures are kept and replayed first next time.
settings.register_profile(
    "fuzz",
    settings.get_profile("ci"),
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/fuzz"),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Spark's JVM in tests runs seconds of work on small data, where the C2 compiler's warm-up
#: costs more CPU than it saves: a Spark agreement example took 76.8 s of machine CPU with
#: the JVM's defaults and 56.2 s with C1 only and the serial collector (52 s and 48 s wall).
#: Inherited by the jobs run from their artifacts; JVM flags only, the code is the same.
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    '--driver-java-options "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" pyspark-shell',
)

#: ``make fuzz`` multiplies each property test's own example budget by this.
FUZZ_SCALE = int(os.environ.get("FMCG_FUZZ_SCALE", "1"))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs after Hypothesis' plugin has applied --hypothesis-profile / --hypothesis-seed.
    if config.getoption("hypothesis_seed", None) is not None and settings().derandomize:
        settings.load_profile("seeded")


def _shares(total: int, workers: int) -> list[int]:
    """How many tests worksteal first hands each worker: a contiguous share of the order,
    ``len(pending) // workers_left`` each, front to back (xdist's ``check_schedule``)."""
    sizes = []
    for left in range(workers, 0, -1):
        sizes.append((total - sum(sizes)) // left)
    return sizes


def _order_for_workers(items: list[pytest.Item], workers: int) -> None:
    """Where each test runs under ``--dist worksteal``, never what it asserts.

    worksteal hands each worker a contiguous share of this order and, when one runs dry, moves
    the tail of another's queue to it. So the tests on the shared Spark session head the
    first share (one worker runs them all: one JVM pays Spark's warm-up, where two JVMs each
    spent ~20 s of CPU on it), the ``slow`` modules head the other shares, and every queue
    ends in short tests, which balance to within seconds instead of a lone 30-70 s test at the
    end. A module's slow tests stay together, so its module fixtures run once.
    """
    if workers < 2:  # one worker: the collection order as it is
        return
    spark = [item for item in items if "spark" in getattr(item, "fixturenames", ())]
    placed = {id(item) for item in spark}
    slow: dict[str, list[pytest.Item]] = {}
    for item in items:
        if id(item) not in placed and item.get_closest_marker("slow"):
            slow.setdefault(item.nodeid.partition("::")[0], []).append(item)
            placed.add(id(item))
    queues: list[list[pytest.Item]] = [spark] + [[] for _ in range(workers - 1)]
    for i, module in enumerate(slow.values()):
        queues[1 + i % (workers - 1)].extend(module)
    rest = iter([item for item in items if id(item) not in placed])
    for queue, size in zip(queues, _shares(len(items), workers), strict=True):
        queue.extend(islice(rest, max(0, size - len(queue))))
    queues[-1].extend(rest)
    items[:] = [item for queue in queues for item in queue]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _order_for_workers(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    if FUZZ_SCALE == 1:
        return
    for item in items:
        test = getattr(item, "obj", None)
        if not getattr(test, "is_hypothesis_test", False):
            continue
        # A test's own @settings(max_examples=...) outranks every profile, so the budget is
        # scaled on the settings object Hypothesis attached to the test (no public hook).
        own = test._hypothesis_internal_use_settings  # type: ignore[union-attr]
        test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
            own, max_examples=own.max_examples * FUZZ_SCALE
        )


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto server on 127.0.0.1, exported as ``AWS_ENDPOINT_URL``.

    ``FMCG_HOME`` points at a temporary directory too: what tests keep locally (the local
    users' authenticator secrets) stays out of the work tree.
    """
    pid, url = start_server()
    saved = dict(os.environ)
    os.environ.update(local_environment(url))
    os.environ[STATE_DIR_VARIABLE] = str(tmp_path_factory.mktemp("fmcg-home"))
    try:
        yield url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stop_server(pid)


@pytest.fixture(scope="session")
def spark(emulator_url: str) -> Iterator[SparkSession]:
    """Spark in local mode on 2 cores, its Iceberg catalog on the emulator: one session for
    every module that uses it, so its Python workers start (and import the jobs) once."""
    from pipeline.spark.session import spark_session

    session = spark_session("fmcg-tests", cores=2)
    yield session
    session.stop()


@pytest.fixture
def stack(emulator_url: str) -> LocalStack:
    """Every resource of ``infra/template.yaml``, provisioned under a unique stack name."""
    return LocalStack.create(emulator_url, stack_name=f"t{uuid.uuid4().hex[:10]}")
