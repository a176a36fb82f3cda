"""The user's local date, and ISO week labels."""

import datetime
from types import SimpleNamespace

from studymaster.dates import iso_week_label, local_date_at, local_today, today_in

# 23:30 UTC on a Sunday: already Monday in Tokyo, still Sunday afternoon in New York.
SUNDAY_NIGHT_UTC = datetime.datetime(2026, 11, 29, 23, 30, tzinfo=datetime.UTC)


def test_local_today_is_the_date_in_the_users_time_zone():
    tokyo, new_york = SimpleNamespace(time_zone="Asia/Tokyo"), SimpleNamespace(time_zone="America/New_York")
    assert local_today(tokyo, SUNDAY_NIGHT_UTC) == datetime.date(2026, 11, 30)
    assert local_today(new_york, SUNDAY_NIGHT_UTC) == datetime.date(2026, 11, 29)
    assert local_date_at(tokyo, SUNDAY_NIGHT_UTC) == local_today(tokyo, SUNDAY_NIGHT_UTC)


def test_today_in_a_time_zone_other_than_the_users():
    # The extremes of the tz database: UTC+14 and UTC-12 are two calendar days apart.
    assert today_in("Pacific/Kiritimati", SUNDAY_NIGHT_UTC) == datetime.date(2026, 11, 30)
    assert today_in("Etc/GMT+12", SUNDAY_NIGHT_UTC) == datetime.date(2026, 11, 29)


def test_local_today_defaults_to_djangos_clock(monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: SUNDAY_NIGHT_UTC)
    assert local_today(SimpleNamespace(time_zone="Asia/Tokyo")) == datetime.date(2026, 11, 30)


def test_iso_week_labels_follow_iso_8601():
    assert iso_week_label(datetime.date(2027, 1, 1)) == "2026-W53"
    assert iso_week_label(datetime.date(2026, 11, 30)) == "2026-W49"
