"""The project's URLs: each app's URLconf, included by name; studymaster imports no app."""

from django.contrib import admin
from django.urls import include, path, re_path

from studymaster.api import api_not_found

urlpatterns = [
    # /admin/health/, /api/health/ and /metrics; first, so the admin's catch-all does not shadow them.
    path("", include("operations.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("accounts.urls")),
    path("api/", include("sessions_app.urls")),
    path("api/", include("gamification.urls")),
    # Keep last: any other /api/ URL is a JSON 404, in development too.
    re_path(r"^api/", api_not_found),
]

# JSON errors for /api/ paths, Django's pages elsewhere (studymaster.api).
handler404 = "studymaster.api.page_not_found"
handler500 = "studymaster.api.server_error"
