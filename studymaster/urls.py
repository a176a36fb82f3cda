from django.contrib import admin
from django.urls import include, path, re_path

from studymaster.api import api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("accounts.urls")),
    path("api/", include("sessions_app.urls")),
    path("api/", include("gamification.urls")),
    path("api/health/", include("migration_tools.urls")),
    # Keep last: any other /api/ URL is a JSON 404, in development too.
    re_path(r"^api/", api_not_found),
]

# JSON errors for /api/ paths, Django's pages elsewhere (studymaster.api).
handler404 = "studymaster.api.page_not_found"
handler500 = "studymaster.api.server_error"
