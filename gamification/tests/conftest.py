import pytest


@pytest.fixture(autouse=True)
def _midweek(midweek_clock):
    """Every test here runs on a Wednesday afternoon (see the root conftest's midweek_clock)."""
