"""What every API client meets: the error shape, JSON 404s, CORS, the schema and its docs page."""

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_malformed_json_is_a_400_in_the_error_shape():
    response = APIClient().post(
        "/api/auth/register/", data='{"username": "ada", "email":', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error" and "JSON parse error" in body["message"]
    assert set(body) == {"code", "message"}


def test_a_json_array_instead_of_an_object_is_a_400():
    response = APIClient().post("/api/auth/token/", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_form_body_is_refused_as_unsupported():
    response = APIClient().post("/api/auth/token/", data={"username": "ada", "password": "x"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_an_unknown_api_url_is_a_json_404():
    response = APIClient().get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_an_unknown_api_url_is_a_json_404_in_development_too(settings):
    settings.DEBUG = True  # Django's technical 404 page replaces handler404 then
    response = APIClient().get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_missing_trailing_slash_is_a_404_that_says_so():
    response = APIClient().post("/api/auth/token", {"username": "x", "password": "y"}, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == "Not found. API URLs end with a slash: /api/auth/token/"


def test_an_unknown_page_outside_the_api_is_still_html():
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_wrong_method_is_a_405_in_the_error_shape():
    response = APIClient().get("/api/auth/token/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.fixture
def front_end(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.studymaster.example.com"]
    return "https://app.studymaster.example.com"


def test_cors_preflight_allows_the_configured_front_end(front_end):
    response = APIClient().options(
        "/api/auth/token/",
        HTTP_ORIGIN=front_end,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == front_end
    allowed = {header.strip() for header in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed


def test_cors_refuses_other_origins(front_end):
    response = APIClient().options(
        "/api/auth/token/",
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in response


def test_cors_lets_the_front_end_read_retry_after(front_end):
    response = APIClient().post(
        "/api/auth/token/", {"username": "x", "password": "y"}, format="json", HTTP_ORIGIN=front_end
    )
    assert response["Access-Control-Allow-Origin"] == front_end
    assert "retry-after" in response["Access-Control-Expose-Headers"].lower()


def test_the_schema_is_public_openapi_3_with_the_auth_endpoints():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/auth/register/", "/api/auth/token/", "/api/auth/token/refresh/", "/api/me/"):
        assert path in schema["paths"]
    assert "jwtAuth" in schema["components"]["securitySchemes"]
    assert not schema["paths"]["/api/auth/register/"]["post"].get("security")  # public
    assert schema["paths"]["/api/me/"]["get"]["security"] == [{"jwtAuth": []}]
    me_fields = schema["components"]["schemas"]["ProfileOutput"]["properties"]
    assert me_fields["points"]["readOnly"] is True


def test_the_docs_page_is_public_and_loads_nothing_from_another_host():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert references, "the page references its assets"
    assert all(not re.match(r"^(https?:)?//", ref) for ref in references), references
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert not re.search(r"https?://(?!localhost|testserver)", html.replace("http://www.w3.org", ""))
    # ... and the assets it names ship with drf-spectacular-sidecar, for collectstatic.
    from django.contrib.staticfiles import finders

    for asset in re.findall(r"/static/(drf_spectacular_sidecar/[^\"'?]+)", html):
        assert finders.find(asset), asset
    # No inline script or style either (the Content-Security-Policy allows none): the set-up
    # comes from ?script, the page's styles from a static file.
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    assert finders.find("accounts/swagger_ui.css")
    script = APIClient().get("/api/docs/", {"script": ""})
    assert script.status_code == 200 and "/api/schema/" in script.content.decode()


def test_the_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    # Every view must describe its input and output; a warning here is a hole in the docs.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")


@pytest.mark.urls("accounts.tests.urls_errors")
def test_an_unhandled_error_in_the_api_is_a_json_500_without_details():
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/test-crash/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "server_error" and "unexpected failure" not in body["message"]


def test_a_django_validation_error_from_a_service_keeps_its_fields():
    from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

    from studymaster.api import exception_handler

    response = exception_handler(ValidationError({"email": ["Taken."], NON_FIELD_ERRORS: ["Clash."]}), {})
    assert response.status_code == 400
    assert response.data["fields"] == {"email": ["Taken."], "non_field_errors": ["Clash."]}
    response = exception_handler(ValidationError("Plain."), {})
    assert response.data == {
        "code": "invalid",
        "message": "Plain.",
        "fields": {"non_field_errors": ["Plain."]},
    }
