"""Rule kinds of the alert engine: threshold, trend, deadman (one module each)."""

from alerting.rules.trend import Fit, fit_trend, forecast_crossings, minutes_to_reach

__all__ = ["Fit", "fit_trend", "forecast_crossings", "minutes_to_reach"]
