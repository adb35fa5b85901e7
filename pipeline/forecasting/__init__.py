"""The batch forecaster: vectorised models, conformal intervals, M5 scoring, DynamoDB."""

from pipeline.forecasting.dynamo import BatchWriter, ForecastRow, forecast_item, write_forecasts
from pipeline.forecasting.forecaster import Forecast, ForecasterConfig, forecast
from pipeline.forecasting.job import ForecastReport, forecast_bias_pct, run_forecast

__all__ = [
    "BatchWriter",
    "Forecast",
    "ForecastReport",
    "ForecastRow",
    "ForecasterConfig",
    "forecast",
    "forecast_bias_pct",
    "forecast_item",
    "run_forecast",
    "write_forecasts",
]
