"""Forecaster time and peak memory as the number of series grows (1,941 days each).

Each size runs in a fresh process so its peak RSS (``VmHWM``) is its own: the synthetic
history (M5-like intermittency: a Poisson-gamma mix with per-series levels from 0.05 to
20 units a day, weekly seasonality and stockout-censored stretches), then one
``forecast`` with the covariates the job passes (so the global model trains and predicts
as in the job). Printed per size: seconds, peak RSS, and the growth per doubling of series
(``(rss_b / rss_a) ** (1 / log2(n_b / n_a))``; 1.0 is flat).

    python benchmarks/forecaster_scale.py [--sizes 944 7622 30490] [--json out.json]

``--backtest`` measures ``fmcg forecast backtest`` instead, as a user runs it: on the M5
subset's 944 series replicated with noise to ``--series`` (30,490 by default: M5's full
count; each copy's sales Poisson around the original's times a level of its own, its prices
the original's times a factor of its own), 1,941 days with prices and the M5 calendar, the
file built in a temporary directory (never in the repository) by a process of its own, then
the CLI in a child process whose peak RSS and wall time are reported.

    python benchmarks/forecaster_scale.py --backtest [--series 30490] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _common import Figure, add_arguments, write_json

DAYS = 1941  # the M5 history length
HORIZON = 28


def synthetic_history(series: int, days: int = DAYS, seed: int = 7) -> npt.NDArray[np.float64]:
    """Intermittent daily demand ``(series, days)`` with NaN for censored and unlaunched days."""
    rng = np.random.default_rng(seed)
    history = np.empty((series, days))
    weekly = 1.0 + 0.3 * np.sin(2 * np.pi * (np.arange(days) % 7) / 7)[None, :]
    # In blocks of series, so the generator's temporaries do not set the peak being measured.
    for start in range(0, series, 1024):
        rows = min(1024, series - start)
        level = np.exp(rng.uniform(np.log(0.05), np.log(20.0), rows))[:, None]
        block = rng.poisson(rng.gamma(2.0, level * weekly / 2.0, (rows, days))).astype(np.float64)
        launch = rng.integers(0, days // 2, rows)
        block[np.arange(days)[None, :] < launch[:, None]] = np.nan
        block[rng.random((rows, days)) < 0.01] = np.nan  # about 1 % of days with an empty shelf
        history[start : start + rows] = block
    return history


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def covariates(series: int) -> Any:
    """What the forecast job passes: each series' location (10 stores, US holidays), and the
    SKU, location and whole-lake groups, so the global model runs as it does in the job."""
    import pandas as pd

    from pipeline.forecasting.calendar import CalendarSpec
    from pipeline.forecasting.forecaster import Covariates

    ids = np.arange(series)
    return Covariates(
        start=pd.Timestamp("2011-01-29"),
        locations=[f"LOC-{i % 10}" for i in ids],
        calendar=CalendarSpec(),
        groups={"all": np.zeros(series, dtype=np.int64), "sku": ids // 10, "location": ids % 10},
    )


def _one(series: int, chunk: int | None) -> dict[str, float]:
    from pipeline.forecasting.forecaster import ForecasterConfig, forecast

    history = synthetic_history(series)
    before = _peak_rss_mb()
    config = ForecasterConfig(horizon=HORIZON)
    if chunk:
        config = ForecasterConfig(horizon=HORIZON, chunk_series=chunk, calibration_series=chunk)
    started = time.perf_counter()
    result = forecast(history, config, covariates(series))
    seconds = time.perf_counter() - started
    assert result.point.shape == (series, HORIZON)
    return {
        "series": series,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "input_rss_mb": round(before, 1),
    }


def _run(series: int, chunk: int | None = None) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", str(series)]
    if chunk:
        command += ["--chunk", str(chunk)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    row: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({**row, "chunk": chunk or "default"}), flush=True)
    return row


ROOT = Path(__file__).resolve().parents[1]
M5 = ROOT / "../shared/data/m5_subset/m5_subset_944.parquet"
M5_PRICES = ROOT / "../shared/data/m5_subset/m5_subset_944_prices.parquet"


def replicated_m5(path: Path, series: int, seed: int = 11) -> None:
    """Write the M5 subset's series replicated with noise to ``series`` series (one copy at
    a time, so this process stays small) as backtest input with prices."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pd.read_parquet(M5, columns=["id", "date", "sales", "store_id", "item_id"])
    prices = pd.read_parquet(M5_PRICES, columns=["id", "date", "sell_price"])
    data = data.merge(prices, on=["id", "date"], how="left")
    data["date"] = pd.to_datetime(data["date"]).dt.date
    originals = sorted(data["id"].unique())
    rng = np.random.default_rng(seed)
    copies = -(-series // len(originals))
    with pq.ParquetWriter(path, _schema(pa)) as writer:
        for k in range(copies):
            keep = originals[: min(len(originals), series - k * len(originals))]
            part = data[data["id"].isin(keep)] if len(keep) < len(originals) else data
            codes, uniques = pd.factorize(part["id"])
            level = np.exp(rng.normal(0.0, 0.5, len(uniques)))[codes]
            factor = rng.uniform(0.8, 1.2, len(uniques))[codes]
            table = pa.table(
                {
                    "id": (part["id"] + f"_r{k}").to_numpy(dtype=object),
                    "date": part["date"].to_numpy(dtype=object),
                    "sales": rng.poisson(part["sales"].to_numpy() * level).astype(np.float64),
                    "store_id": part["store_id"].to_numpy(dtype=object),
                    "item_id": (part["item_id"] + f"_r{k}").to_numpy(dtype=object),
                    "price": np.round(part["sell_price"].to_numpy() * factor, 2),
                },
                schema=_schema(pa),
            )
            writer.write_table(table, row_group_size=1 << 20)


def _schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("id", pa.string()),
            ("date", pa.date32()),
            ("sales", pa.float64()),
            ("store_id", pa.string()),
            ("item_id", pa.string()),
            ("price", pa.float64()),
        ]
    )


def backtest_run(series: int, prices: bool = True) -> dict[str, Any]:
    """``fmcg forecast backtest`` on ``series`` replicated M5 series: wall seconds and the
    CLI process's peak RSS."""
    import resource
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"m5x{series}.parquet"
        build = [sys.executable, __file__, "--build", str(data), "--series", str(series)]
        subprocess.run(build, check=True)  # noqa: S603
        fmcg = Path(sys.executable).parent / "fmcg"
        command = [
            str(fmcg), "forecast", "backtest", "--data", str(data),
            "--json", str(Path(tmp) / "scores.json"),
            "--predictions", str(Path(tmp) / "predictions.parquet"),
            "--calendar", str(ROOT / "benchmarks/m5_calendar.yaml"),
        ]  # fmt: skip
        if not prices:
            command.append("--no-prices")
        # This checkout's code, whichever checkout the environment's entry point was made in.
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)  # noqa: S603
        seconds = time.perf_counter() - started
        # Linux reports ru_maxrss in KiB: the largest of the finished children (the CLI
        # is the largest: the builder wrote one copy of the series at a time).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        scores = json.loads((Path(tmp) / "scores.json").read_text())
    row = {
        "series": scores["series"],
        "days": DAYS,
        "prices": scores["prices"],
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak, 1),
        "fit_seconds": scores["fit_seconds"],
        "forecaster_rmsse": round(scores["models"]["forecaster"]["rmsse"], 4),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[944, 7622, 30490])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline-size",
        type=int,
        default=7622,
        help="also forecast this many series in one chunk (the single-pass forecaster)",
    )
    parser.add_argument(
        "--backtest", action="store_true", help="measure fmcg forecast backtest instead"
    )
    parser.add_argument("--series", type=int, default=30490, help="with --backtest")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.build:
        replicated_m5(args.build, args.series)
        return
    if args.backtest:
        if not M5_PRICES.is_file():
            raise SystemExit(f"M5 subset with prices not found at {M5_PRICES}")
        row = backtest_run(944 if args.quick else args.series)
        figure = Figure(
            f"fmcg forecast backtest, {row['series']} series x {DAYS} days with prices, peak RSS",
            row["peak_rss_mb"],
            "MB",
            goal="<= 4096",
        )
        timing = Figure(
            f"fmcg forecast backtest, {row['series']} series, time", row["seconds"], "s"
        )
        write_json(
            args.json, "forecaster_scale_backtest", [figure, timing], quick=args.quick, details=row
        )
        return
    if args.one:
        print(json.dumps(_one(args.one, args.chunk)))
        return
    sizes = [944, 7622] if args.quick else args.sizes
    rows = [_run(n) for n in sizes]
    single = _run(args.baseline_size, chunk=args.baseline_size)
    figures = []
    for row in rows:
        n = row["series"]
        baseline = single if n == single["series"] else None
        figures.append(
            Figure(
                f"forecast {n} series, peak RSS",
                row["peak_rss_mb"],
                "MB",
                baseline=baseline["peak_rss_mb"] if baseline else None,
                note="baseline: the same series in one chunk" if baseline else "",
            )
        )
        figures.append(
            Figure(
                f"forecast {n} series, time",
                row["seconds"],
                "s",
                baseline=baseline["seconds"] if baseline else None,
            )
        )
    for a, b in zip(rows, rows[1:], strict=False):
        doublings = math.log2(b["series"] / a["series"])
        for key, unit in (("peak_rss_mb", "RSS"), ("seconds", "time")):
            growth = (b[key] / a[key]) ** (1 / doublings)
            name = f"{unit} growth per doubling, {a['series']} -> {b['series']} series"
            figures.append(Figure(name, round(growth, 3), "x"))
            print(f"{name}: {growth:.3f}x")
    largest = rows[-1]
    if largest["series"] >= 30490:
        figures.append(
            Figure(
                f"peak RSS at {largest['series']} series",
                largest["peak_rss_mb"],
                "MB",
                goal="<= 4096",
            )
        )
    write_json(
        args.json,
        "forecaster_scale",
        figures,
        quick=args.quick,
        details={"days": DAYS, "horizon": HORIZON, "rows": rows, "single_chunk": single},
    )


if __name__ == "__main__":
    main()
