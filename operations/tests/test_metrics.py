"""/metrics: access by token, the series it serves, and aggregation across worker processes."""

import os
import subprocess
import sys
import textwrap

import pytest

from studymaster.observability import LATENCY_BUCKETS

METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    return settings


def _metrics(client):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")


def test_metrics_are_off_without_a_token(settings, client):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_need_the_token(metrics_on, client):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=METRICS_TOKEN).status_code == 401


@pytest.mark.django_db
def test_metrics_label_requests_by_route_and_database_commands_by_name(metrics_on, client):
    client.get("/api/health/ready/")
    client.get("/no/such/page/42")
    response = _metrics(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert (
        'studymaster_http_request_duration_seconds_count{method="GET",route="api/health/ready/",status="200"}'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/page/42" not in text
    assert 'studymaster_mongodb_command_duration_seconds_count{command="ping",outcome="ok"}' in text
    assert "studymaster_mongodb_pool_checkouts_total" in text
    assert "studymaster_mongodb_pool_checkout_failures_total" in text
    assert "studymaster_mongodb_retries" in text


def _series(text: str, metric: str) -> set[str]:
    return {line.split(" ")[0] for line in text.splitlines() if line.startswith(metric + "_bucket{")}


@pytest.mark.django_db
def test_made_up_methods_paths_and_statuses_cannot_grow_the_metrics(metrics_on, client):
    metric = "studymaster_http_request_duration_seconds"
    client.generic("FROB", "/api/health/live/")
    before = _series(_metrics(client).content.decode(), metric)
    for number in range(500):
        client.generic(f"M{number}X", f"/made/up/{number}/")
        client.generic(f"Q{number}", "/api/health/live/")
    text = _metrics(client).content.decode()
    after = _series(text, metric)
    # One new label set at most (OTHER on the unmatched route, and the /metrics read itself)
    # times the buckets: not 1,000 new ones.
    buckets = len(LATENCY_BUCKETS) + 1
    assert len(after - before) <= 2 * buckets, sorted(after - before)[:5]
    assert "M499X" not in text and "/made/up/" not in text
    assert 'method="OTHER",route="unmatched"' in text and 'method="OTHER",route="api/health/live/"' in text


WORKER = textwrap.dedent(
    """
    import django, sys
    django.setup()
    from studymaster.observability import MONGO_RETRIES
    MONGO_RETRIES.labels(operation="test").inc(int(sys.argv[1]))
    """
)
SCRAPER = textwrap.dedent(
    """
    import django
    django.setup()
    from django.test import RequestFactory
    from operations.views import metrics_view
    request = RequestFactory().get("/metrics", HTTP_AUTHORIZATION="Bearer %s")
    print(metrics_view(request).content.decode())
    """
)


def test_metrics_add_up_across_worker_processes(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, /metrics in any worker shows every worker's counts."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "studymaster.settings.test",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    for count in (2, 3):
        subprocess.run([sys.executable, "-c", WORKER, str(count)], env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPER % METRICS_TOKEN],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert 'studymaster_mongodb_retries_total{operation="test"} 5.0' in scraped
