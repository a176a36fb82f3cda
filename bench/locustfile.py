"""A learner's realistic mix against the API: log in once, then log sessions and read progress.

Used by bench/load.py (``make load``); run headless. Usernames come from LOAD_USER_PREFIX and
LOAD_USER_OFFSET and LOAD_USER_COUNT (each step of bench/load.py has accounts of its own), the
password from LOAD_USER_PASSWORD; each simulated user takes the next one.
"""

import datetime as dt
import itertools
import os

from locust import HttpUser, between, task

PREFIX = os.environ.get("LOAD_USER_PREFIX", "load")
OFFSET = int(os.environ.get("LOAD_USER_OFFSET", "0"))
COUNT = int(os.environ.get("LOAD_USER_COUNT", "60"))
PASSWORD = os.environ.get("LOAD_USER_PASSWORD", "")
_numbers = itertools.count()


class Learner(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.username = f"{PREFIX}{OFFSET + next(_numbers) % COUNT:03d}"
        response = self.client.post(
            "/api/auth/token/", json={"username": self.username, "password": PASSWORD}
        )
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access']}"
        # Sessions go back in time from now, 10 minutes apart, so they never overlap.
        self.next_start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    @task(2)
    def log_session(self):
        started = self.next_start
        self.next_start -= dt.timedelta(minutes=10)
        self.client.post(
            "/api/sessions/",
            json={"subject": "Load testing", "duration_minutes": 5, "started_at": started.isoformat()},
        )

    @task(3)
    def me(self):
        self.client.get("/api/me/")

    @task(2)
    def sessions(self):
        self.client.get("/api/sessions/")

    @task(2)
    def leaderboard(self):
        self.client.get("/api/leaderboard/?period=week")

    @task(1)
    def stats(self):
        self.client.get("/api/stats/")

    @task(2)
    def live(self):
        self.client.get("/api/health/live/")
