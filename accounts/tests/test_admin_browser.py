"""A real browser in the admin and in Swagger UI: a staff user (not a superuser, view permissions
only) logs in, finds a learner and opens that learner's study sessions; Swagger UI loads the
schema and calls the API. Both under the Content-Security-Policy (studymaster/security.py), with
no violation reported.

Headless Debian Chromium through Playwright (the ``browser`` fixture of the root conftest.py)
against pytest-django's ``live_server``, which serves the test database from a thread of this
process.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission

from accounts.tests.factories import PASSWORD, user_create
from sessions_app.tests.factories import log_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

VIEW_PERMISSIONS = [("accounts", "view_user"), ("sessions_app", "view_studysession")]


@pytest.fixture
def support_staff():
    staff = user_create(username="support-kim", is_staff=True)
    staff.user_permissions.add(
        *(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in VIEW_PERMISSIONS
        )
    )
    assert not staff.is_superuser
    return staff


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    # Chromium reports every blocked script, style, image or connection on the console.
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()


def test_staff_find_a_learner_and_open_their_study_sessions(live_server, page, support_staff, tmp_path):
    ada = user_create(username="ada-learner", display_name="Ada")
    grace = user_create(username="grace-learner", display_name="Grace")
    for subject, days_ago in [("Astronomy", 2), ("Botany", 1)]:
        log_session(ada, subject=subject, minutes=40, ago=datetime.timedelta(days=days_ago))
    log_session(grace, subject="Calligraphy", minutes=25, ago=datetime.timedelta(days=1))

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", support_staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url("**/admin/accounts/user/**")
    page.fill("#searchbar", "ada-learner")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/accounts/user/?q=ada-learner")
    results = page.locator("#result_list tbody tr")
    assert results.count() == 1
    assert "grace-learner" not in page.inner_text("#result_list")
    assert results.first.get_by_role("link", name="2 study sessions").count() == 1  # the list column

    results.first.get_by_role("link", name="ada-learner").click()
    page.wait_for_url(f"**/admin/accounts/user/{ada.pk}/change/**")
    page.get_by_role("link", name="2 study sessions").click()
    page.wait_for_url(f"**/admin/sessions_app/studysession/?user__id__exact={ada.pk}")

    session_list = page.inner_text("#result_list")
    assert "Astronomy" in session_list and "Botany" in session_list
    assert "Calligraphy" not in session_list and "grace-learner" not in session_list
    assert page.locator("#result_list tbody tr").count() == 2
    # For a person to look at: pytest --basetemp=DIR keeps it in DIR.
    screenshot = tmp_path / "study-sessions-of-ada.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    assert page.csp_violations == []


def test_swagger_ui_loads_the_schema_and_calls_the_api_under_the_policy(live_server, page):
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Swagger UI's script ran, fetched /api/schema/ and drew the operations.
    page.wait_for_selector("#operations-me-me_retrieve")
    assert page.locator(".opblock").count() > 10
    # "Try it out" on GET /api/me/ without a token: the browser reaches the API (connect-src),
    # which answers 401.
    operation = "#operations-me-me_retrieve"
    page.click(f"{operation} .opblock-summary")
    page.click(f"{operation} .try-out__btn")
    page.click(f"{operation} .execute")
    status = page.locator(f"{operation} .live-responses-table tbody .response-col_status").first
    assert status.inner_text().strip().startswith("401")
    assert page.csp_violations == []
