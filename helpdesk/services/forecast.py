"""The forecast of daily ticket volume (issue 17): the next weeks from the installation's own
history, with prediction intervals, and an honest backtest.

**The model.** statsmodels' ``AutoReg`` on ``log(1 + tickets a day)``: a constant and a trend,
a dummy per weekday (the week's pattern: Bangladesh's Friday and Saturday are quiet), the
previous seven days (what last week did), and Bangladesh's public holidays from the `holidays`
package as regressors — the holiday itself (closed, few tickets), the days just before an Eid
(orders before the festival), and the days right after a closed stretch (the backlog comes in).
Eid moves eleven days a year, so a same-weekday-last-year or weekly model cannot know it; the
holiday calendar can, for the days ahead too. Intervals are the model's (their log scale back
to counts), at 90% by default.

**The backtest.** The last 8 weeks are forecast from the history before them and compared with
what happened, next to a seasonal-naive forecast (the last week before them, repeated). The
metric is MASE: mean absolute error divided by the in-sample mean absolute error of the
one-week-ago forecast, so 1.0 is "as good as last week's numbers" on the history, and it works
on days with no tickets (where a percentage error does not). The report says plainly when the
model does not beat the naive forecast.

**Too little history.** Under 8 weeks there is no forecast, only how many more days it needs;
under 12 weeks (8 to test on, 4 to learn from) no backtest.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

MIN_HISTORY_DAYS = 56
BACKTEST_DAYS = 56
MIN_TRAIN_DAYS = 28
MAX_HORIZON = 90
LAGS = 7


@dataclass(frozen=True)
class Day:
    date: date
    expected: float
    low: float
    high: float


@dataclass(frozen=True)
class Backtest:
    model_error: float
    naive_error: float
    metric: str = "MASE"
    days: int = BACKTEST_DAYS

    @property
    def beats_naive(self) -> bool:
        return self.model_error < self.naive_error


@dataclass
class Forecast:
    history_days: int
    days: list[Day] = field(default_factory=list)
    backtest: Backtest | None = None
    # Days of history still needed before there is a forecast (0 when there is one).
    needs_days: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "history_days": self.history_days,
            "needs_days": self.needs_days,
            "days": [
                {
                    "date": d.date.isoformat(),
                    "expected": round(d.expected, 1),
                    "low": round(d.low, 1),
                    "high": round(d.high, 1),
                }
                for d in self.days
            ],
            "backtest": (
                {
                    "model_error": round(self.backtest.model_error, 3),
                    "naive_error": round(self.backtest.naive_error, 3),
                    "metric": self.backtest.metric,
                    "days": self.backtest.days,
                    "beats_naive": self.backtest.beats_naive,
                }
                if self.backtest is not None
                else None
            ),
        }


# --- holidays as regressors ----------------------------------------------------------------------


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> dict[date, str]:
    import holidays

    return dict(holidays.country_holidays(country, years=[year], language="en_US").items())


def holiday_regressors(days: Sequence[date], country: str = "BD") -> list[list[float]]:
    """Per day: [a public holiday, one of the 3 days before an Eid, one of the 2 days after a
    closed stretch] as 0/1."""
    span = {d.year for d in days} | {d.year + 1 for d in days} | {d.year - 1 for d in days}
    closed: dict[date, str] = {}
    for year in span:
        closed.update(_holidays(country, year))
    eids = {d for d, name in closed.items() if "Eid" in name}
    rows = []
    for day in days:
        before_eid = any((day + timedelta(days=k)) in eids for k in (1, 2, 3)) and day not in closed
        after = day not in closed and any((day - timedelta(days=k)) in closed for k in (1, 2))
        rows.append([float(day in closed), float(before_eid), float(after)])
    return rows


# --- the model -----------------------------------------------------------------------------------


def _dense(history: Iterable[tuple[date, int]]) -> tuple[list[date], list[float]]:
    """Every day from the first to the last, a day without tickets as 0."""
    counts = {d: float(n) for d, n in history}
    if not counts:
        return [], []
    first, last = min(counts), max(counts)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days, [counts.get(d, 0.0) for d in days]


def _fit_predict(
    days: list[date], values: list[float], horizon: int, level: float, country: str
) -> list[Day]:
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.ar_model import AutoReg

    index = pd.DatetimeIndex(pd.to_datetime(days), freq="D")
    y = pd.Series(np.log1p(np.asarray(values, dtype=float)), index=index)
    names = ["holiday", "before_eid", "after_closed"]
    exog = pd.DataFrame(holiday_regressors(days, country), index=index, columns=names)
    ahead = [days[-1] + timedelta(days=i + 1) for i in range(horizon)]
    ahead_index = pd.DatetimeIndex(pd.to_datetime(ahead), freq="D")
    exog_oos = pd.DataFrame(holiday_regressors(ahead, country), index=ahead_index, columns=names)
    # A regressor that never happened in the history cannot be estimated: left out.
    keep = [c for c in names if exog[c].any() and not exog[c].all()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' notes on frequency and convergence
        model = AutoReg(
            y,
            lags=LAGS,
            trend="ct",
            seasonal=True,
            period=7,
            exog=exog[keep] if keep else None,
        ).fit()
        prediction = model.get_prediction(
            start=len(y),
            end=len(y) + horizon - 1,
            exog_oos=exog_oos[keep] if keep else None,
        )
        mean = np.asarray(prediction.predicted_mean)
        bounds = np.asarray(prediction.conf_int(alpha=1 - level))
    out = []
    for i, day in enumerate(ahead):
        expected = max(0.0, float(np.expm1(mean[i])))
        low = max(0.0, float(np.expm1(bounds[i][0])))
        high = max(expected, float(np.expm1(bounds[i][1])))
        out.append(Day(day, expected, min(low, expected), high))
    return out


def _mase(actual: Sequence[float], predicted: Sequence[float], scale: float) -> float:
    errors = [abs(a - p) for a, p in zip(actual, predicted, strict=True)]
    return (sum(errors) / len(errors)) / scale if scale > 0 else float("inf")


def backtest(
    days: list[date], values: list[float], *, level: float = 0.9, country: str = "BD"
) -> Backtest | None:
    """The last :data:`BACKTEST_DAYS` days forecast from the days before them, against the
    seasonal-naive forecast (the week before them repeated), as MASE."""
    if len(values) < BACKTEST_DAYS + MIN_TRAIN_DAYS:
        return None
    cut = len(values) - BACKTEST_DAYS
    train_days, train = days[:cut], values[:cut]
    actual = values[cut:]
    predicted = [d.expected for d in _fit_predict(train_days, train, BACKTEST_DAYS, level, country)]
    last_week = train[-7:]
    naive = [last_week[i % 7] for i in range(BACKTEST_DAYS)]
    # The scale: how far off "same weekday last week" is on the training history.
    diffs = [abs(train[i] - train[i - 7]) for i in range(7, len(train))]
    scale = sum(diffs) / len(diffs) if diffs else 0.0
    if scale == 0:
        scale = 1.0
    return Backtest(_mase(actual, predicted, scale), _mase(actual, naive, scale))


def forecast(
    history: Iterable[tuple[date, int]],
    *,
    horizon: int = 28,
    level: float = 0.9,
    country: str = "BD",
    with_backtest: bool = True,
) -> Forecast:
    """The next ``horizon`` days after the history's last day (``history``: (day, tickets)
    pairs; missing days count 0)."""
    horizon = max(1, min(int(horizon), MAX_HORIZON))
    days, values = _dense(history)
    result = Forecast(history_days=len(days))
    if len(days) < MIN_HISTORY_DAYS:
        result.needs_days = MIN_HISTORY_DAYS - len(days)
        return result
    result.days = _fit_predict(days, values, horizon, level, country)
    if with_backtest:
        result.backtest = backtest(days, values, level=level, country=country)
    return result
