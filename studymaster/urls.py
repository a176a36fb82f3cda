from django.contrib import admin
from django.urls import include, path, re_path

from migration_tools.health import admin_health_view
from studymaster.api import api_not_found
from studymaster.observability import metrics_view

urlpatterns = [
    path("admin/health/", admin_health_view, name="admin-health"),
    path("admin/", admin.site.urls),
    path("api/", include("accounts.urls")),
    path("api/", include("sessions_app.urls")),
    path("api/", include("gamification.urls")),
    path("api/health/", include("migration_tools.urls")),
    path("metrics", metrics_view, name="metrics"),
    # Keep last: any other /api/ URL is a JSON 404, in development too.
    re_path(r"^api/", api_not_found),
]

# JSON errors for /api/ paths, Django's pages elsewhere (studymaster.api).
handler404 = "studymaster.api.page_not_found"
handler500 = "studymaster.api.server_error"
