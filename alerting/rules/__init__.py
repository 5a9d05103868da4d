"""Rule kinds of the alert engine: threshold, trend, deadman (one module each)."""

from alerting.rules.kernel import crossings, direction_sign, minutes_to_reach, passed, upcoming
from alerting.rules.trend import Fit, fit_trend, forecast_crossings

__all__ = ["Fit", "crossings", "direction_sign", "fit_trend", "forecast_crossings", "minutes_to_reach", "passed",
           "upcoming"]
