"""The chart of one series of a local stack: its curated history and its forecast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import NotFoundError
from pipeline.forecasting.plot import plot_forecast, read_series

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.local.stack import LocalStack


def plot_from_stack(stack: LocalStack, sku_id: str, location_id: str, path: Path | str) -> Path:
    """Chart one SKU x location of a provisioned stack (curated history + DynamoDB).

    Raises :class:`NotFoundError` for a series with neither history nor forecast (a typo,
    most likely): an empty chart would look like a series that sold nothing.
    """
    curated, table = stack.ref("CuratedBucket"), stack.ref("ForecastTable")
    history, forecast = read_series(
        curated_bucket=curated,
        database=stack.ref("LakeDatabase"),
        forecast_table=table,
        sku_id=sku_id,
        location_id=location_id,
        session=stack.session(),
    )
    if history.empty and forecast.empty:
        raise NotFoundError(
            f"no series {sku_id} at {location_id}: no daily demand in s3://{curated} and "
            f"no forecast in {table}"
        )
    return plot_forecast(history, forecast, path, title=f"{sku_id} at {location_id}")
