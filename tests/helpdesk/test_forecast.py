"""The forecast on generated histories with a known weekly pattern, trend and Bangladesh's
holidays: it beats the seasonal-naive forecast there, knows a holiday ahead, keeps its
intervals around its expectation, says how much history it needs, and is quick."""

from __future__ import annotations

import math
import time
from datetime import date, timedelta

import numpy as np

from helpdesk.services import forecast as fc

# Sunday–Thursday busy, Friday and Saturday quiet (date.weekday(): Monday is 0).
WEEK = {0: 1.1, 1: 1.05, 2: 1.0, 3: 0.95, 4: 0.45, 5: 0.6, 6: 1.15}


def history(end: date, days: int, seed: int = 7) -> list[tuple[date, int]]:
    """Tickets a day: a trend, the week, closed holidays (a third of the volume), the 3 days
    before an Eid (half as much again), the 2 days after a closed stretch (backlog), noise."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days - 1)
    dates = [start + timedelta(days=i) for i in range(days)]
    regressors = fc.holiday_regressors(dates)
    out = []
    for i, (day, (closed, before_eid, after)) in enumerate(zip(dates, regressors, strict=True)):
        level = (80 + 0.03 * i) * WEEK[day.weekday()]
        level *= 0.3 if closed else 1.0
        level *= 1.5 if before_eid else 1.0
        level *= 1.4 if after else 1.0
        out.append((day, int(rng.poisson(level))))
    return out


def test_it_beats_the_seasonal_naive_forecast_over_eid() -> None:
    # The last 8 weeks (5 March to 30 April 2026) hold Eid al-Fitr (21-23 March).
    result = fc.forecast(history(date(2026, 4, 30), 3 * 365), horizon=28)
    assert result.backtest is not None
    assert result.backtest.beats_naive, result.backtest
    assert result.backtest.model_error < 0.9 * result.backtest.naive_error


def test_the_days_ahead_know_the_week_and_the_holidays() -> None:
    result = fc.forecast(history(date(2026, 4, 30), 3 * 365), horizon=28)
    days = {d.date: d for d in result.days}
    assert len(days) == 28 and min(days) == date(2026, 5, 1) and max(days) == date(2026, 5, 28)
    assert all(d.low <= d.expected <= d.high for d in days.values())
    sunday, friday = days[date(2026, 5, 10)], days[date(2026, 5, 15)]
    assert sunday.expected > 1.5 * friday.expected  # the week
    # Eid al-Adha (28 May, a Thursday) against the Thursday before it
    assert days[date(2026, 5, 28)].expected < 0.6 * days[date(2026, 5, 21)].expected
    # the three days before Eid are busier than the same weekdays a week earlier
    assert days[date(2026, 5, 26)].expected > days[date(2026, 5, 19)].expected
    # the intervals hold about what happens: 90% of a fresh draw of the same process
    future = dict(history(date(2026, 5, 28), 3 * 365 + 28, seed=7))
    inside = sum(days[d].low <= future[d] <= days[d].high for d in days)
    assert inside >= 20, inside


def test_short_histories_say_what_they_need() -> None:
    short = fc.forecast(history(date(2026, 4, 30), 40))
    assert short.days == [] and short.needs_days == 16 and short.history_days == 40
    assert short.as_dict()["backtest"] is None
    no_backtest = fc.forecast(history(date(2026, 4, 30), 70))
    assert len(no_backtest.days) == 28 and no_backtest.backtest is None


def test_three_years_in_under_two_seconds() -> None:
    data = history(date(2026, 4, 30), 3 * 365)
    started = time.perf_counter()
    result = fc.forecast(data, horizon=28)
    elapsed = time.perf_counter() - started
    assert result.backtest is not None and elapsed < 2.0, elapsed
    assert not any(math.isnan(d.expected) for d in result.days)
