"""A PNG of one series: recent history, the forecast and its interval."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    from datetime import datetime

    import boto3
    import pandas as pd


def plot_forecast(
    history: pd.DataFrame, forecast: pd.DataFrame, path: Path | str, *, title: str = ""
) -> Path:
    """Write a chart: ``history`` (columns date, units_sold) as a line, ``forecast``
    (date, forecast_val, confidence_lower, confidence_upper) as a line with a shaded band."""
    import matplotlib

    matplotlib.use("Agg")  # no display in Glue, CI or over SSH
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInputError(f"cannot write {out}: {e.strerror}") from e
    fig, ax = plt.subplots(figsize=(10, 4))
    try:
        if not history.empty:
            ax.plot(
                pd.to_datetime(history["date"]),
                history["units_sold"],
                color="0.3",
                linewidth=1,
                label="units sold",
            )
        if not forecast.empty:
            days = pd.to_datetime(forecast["date"])
            ax.fill_between(
                days,
                forecast["confidence_lower"].astype(float),
                forecast["confidence_upper"].astype(float),
                color="tab:blue",
                alpha=0.2,
                label="80 % interval",
            )
            ax.plot(
                days,
                forecast["forecast_val"].astype(float),
                color="tab:blue",
                linewidth=2,
                label="forecast",
            )
        ax.set_title(title)
        ax.set_ylabel("units per day")
        ax.legend(loc="upper left")
        fig.autofmt_xdate()
        fig.tight_layout()
        try:
            fig.savefig(out, dpi=100)
        except OSError as e:
            raise InvalidInputError(f"cannot write {out}: {e.strerror}") from e
        except ValueError as e:  # an extension matplotlib has no writer for
            raise InvalidInputError(f"cannot write {out}: {e}") from e
    finally:
        plt.close(fig)
    return out


def read_series(
    *,
    curated_bucket: str,
    database: str,
    forecast_table: str,
    sku_id: str,
    location_id: str,
    session: boto3.session.Session,
    history_days: int = 120,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last ``history_days`` of one series from curated daily demand and its forecast
    items from DynamoDB (Query on ``PK``, ``SK`` begins with ``LOC#<loc>#DATE#``).

    The history holds the days that have ended at the location at ``now`` (default: the
    current time), as the forecaster sees them: the day in progress is no actual."""
    from datetime import UTC, timedelta
    from datetime import datetime as clock

    import pandas as pd
    from boto3.dynamodb.conditions import Key

    from pipeline.compaction.store import LakeStore
    from pipeline.forecasting.job import FinishedDays, read_table
    from pipeline.lake import forecast_keys
    from pipeline.lake.locations import load_locations
    from pipeline.lake.tables import DAILY_DEMAND

    moment = now or clock.now(UTC)
    # A day or two more than asked for: the days still in progress are dropped below.
    since = (moment - timedelta(days=history_days + 2)).date()
    demand = read_table(session, database, DAILY_DEMAND, since)
    locations = load_locations(LakeStore.from_session(session), curated_bucket)
    demand = FinishedDays(locations, moment).actuals(demand)
    if demand.empty:
        history = pd.DataFrame({"date": [], "units_sold": []})
    else:
        mine = demand[(demand["sku_id"] == sku_id) & (demand["location_id"] == location_id)]
        history = mine.assign(date=pd.to_datetime(mine["date"])).sort_values("date")
        history = history[history["date"] > history["date"].max() - pd.Timedelta(days=history_days)]
    pk, _ = forecast_keys(sku_id, location_id, pd.Timestamp("2000-01-01").date())
    prefix = f"LOC#{location_id}#DATE#"
    table = session.resource("dynamodb").Table(forecast_table)
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("PK").eq(pk) & Key("SK").begins_with(prefix)
    }
    while True:
        page = table.query(**query)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    forecast = pd.DataFrame(
        {
            "date": [pd.Timestamp(str(i["SK"]).removeprefix(prefix)) for i in items],
            "forecast_val": [float(i["forecast_val"]) for i in items],
            "confidence_lower": [float(i["confidence_lower"]) for i in items],
            "confidence_upper": [float(i["confidence_upper"]) for i in items],
        }
    ).sort_values("date")
    return history, forecast
