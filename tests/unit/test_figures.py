"""Benchmark statistics: the median's interval and how a figure is described."""

from tui_agent.bench.figures import Figure, median_interval, spread


def test_the_median_interval_comes_from_the_binomial_distribution() -> None:
    values = [float(v) for v in range(1, 17)]  # 16 values: P(at most 3 below) = 0.0106
    assert median_interval(values) == (4.0, 13.0)
    # 8 values: even 1 of 8 below the median has probability 0.035 > 0.025, so min..max.
    assert median_interval([float(v) for v in range(8)]) == (0.0, 7.0)
    assert median_interval([float(v) for v in range(1, 13)]) == (3.0, 10.0)


def test_the_interval_ignores_the_order_values_came_in() -> None:
    values = [1.10, 0.98, 1.03, 1.21, 1.01, 1.07, 0.95, 1.04, 1.30, 1.02, 1.06, 0.99]
    assert median_interval(values) == (0.99, 1.10)


def test_a_spread_names_its_interval_only_when_there_are_enough_values() -> None:
    many = spread([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7])
    assert "95% interval of the median 1.0–1.7" in many.describe("", 1)
    few = spread([1.0, 1.1, 1.2])
    assert few.interval is None
    assert "interval" not in few.describe("s")


def test_a_target_is_met_by_the_median() -> None:
    assert Figure("s", "ratio", 1.04, "", "≤ 1.05").met is True
    assert Figure("s", "ratio", 1.06, "", "≤ 1.05").met is False
    assert Figure("s", "rate", 100.0, "tok/s", "≥ 90 tok/s").met is True
    assert Figure("s", "info", 3.0).met is None


def test_the_streaming_ratio_says_when_its_interval_straddles_the_target() -> None:
    from tui_agent.bench.ui_bench import ratio_detail

    straddling = spread([0.98, 1.0, 1.02, 1.03, 1.04, 1.06, 1.08, 1.1])
    assert "not settled" in ratio_detail(straddling)
    below = spread([0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03])
    assert "not settled" not in ratio_detail(below)
