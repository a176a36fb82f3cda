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
