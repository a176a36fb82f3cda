"""The arithmetic of the game, with no database access. See docs/gamification.md.

Level L is reached at 50·L·(L−1) total points: the steps between levels are 100, 200, 300…
"""

from __future__ import annotations

import math

POINTS_PER_MINUTE = 1


def points_for_level(level: int) -> int:
    """Total points at which ``level`` is reached (level 1 at 0)."""
    return 50 * level * (level - 1)


def level_for_points(points: int) -> int:
    """The level a total of ``points`` has reached; 1 for zero or negative totals."""
    if points <= 0:
        return 1
    # Solve 50·L·(L−1) <= points for L, then correct the integer square root's rounding.
    level = max(1, (1 + math.isqrt(1 + 2 * points // 25)) // 2)
    while points_for_level(level + 1) <= points:
        level += 1
    while level > 1 and points_for_level(level) > points:
        level -= 1
    return level


def points_to_next_level(points: int) -> int:
    return points_for_level(level_for_points(points) + 1) - max(points, 0)
