import pytest

from gamification.rules import level_for_points, points_for_level, points_to_next_level


@pytest.mark.parametrize(
    ("points", "level", "to_next"),
    [
        (0, 1, 100),
        (-5, 1, 100),
        (99, 1, 1),
        (100, 2, 200),
        (299, 2, 1),
        (300, 3, 300),
        (600, 4, 400),
        (4500, 10, 1000),
    ],
)
def test_levels_follow_50_l_l_minus_1(points, level, to_next):
    assert level_for_points(points) == level
    assert points_to_next_level(points) == to_next


def test_level_thresholds_agree_for_every_total_up_to_a_million():
    for level in range(1, 200):
        start = points_for_level(level)
        assert level_for_points(start) == level
        assert level_for_points(start - 1) == max(level - 1, 1)


def _days(*numbers):
    import datetime

    return {datetime.date(2026, 11, n) for n in numbers}


def test_streaks_derive_from_the_set_of_study_days():
    import datetime

    from gamification.rules import current_streak, longest_streak

    today = datetime.date(2026, 11, 20)
    assert longest_streak(set()) == 0
    assert longest_streak(_days(1, 2, 3, 10, 11)) == 3
    assert current_streak(_days(18, 19, 20), today=today) == 3
    assert current_streak(_days(18, 19), today=today) == 2  # today may still come
    assert current_streak(_days(17, 18), today=today) == 0  # the whole of the 19th passed
    assert current_streak(set(), today=today) == 0


def test_the_stored_current_streak_is_shown_until_a_whole_day_passes():
    import datetime

    from gamification.rules import current_streak, current_streak_as_of

    days = _days(17, 18, 19)
    stored = current_streak(days, today=datetime.date(2026, 11, 19))
    assert stored == 3
    for today, expected in [(19, 3), (20, 3), (21, 0), (30, 0)]:
        today = datetime.date(2026, 11, today)
        shown = current_streak_as_of(stored, last_study_date=max(days), today=today)
        # The same as recomputing from the study days on that day.
        assert shown == current_streak(days, today=today) == expected, today
    assert current_streak_as_of(0, last_study_date=None, today=datetime.date(2026, 11, 20)) == 0


def test_periods_are_local_days_and_iso_weeks_starting_monday():
    import datetime

    from gamification.rules import period_bounds

    sunday = datetime.date(2026, 11, 29)
    assert period_bounds("daily", today=sunday) == (sunday, sunday)
    assert period_bounds("weekly", today=sunday) == (datetime.date(2026, 11, 23), sunday)
    with pytest.raises(ValueError):
        period_bounds("monthly", today=sunday)


def test_quest_metrics_over_a_period():
    import datetime

    from gamification.rules import quest_metric

    days = {
        datetime.date(2026, 11, 16): (40, 2),
        datetime.date(2026, 11, 18): (10, 1),
        datetime.date(2026, 11, 23): (5, 1),
    }
    start, end = datetime.date(2026, 11, 16), datetime.date(2026, 11, 22)
    assert quest_metric("minutes", days, start=start, end=end) == 50
    assert quest_metric("sessions", days, start=start, end=end) == 3
    assert quest_metric("study_days", days, start=start, end=end) == 2
