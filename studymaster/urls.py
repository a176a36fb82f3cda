from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("accounts.urls")),
    path("api/", include("sessions_app.urls")),
    path("api/", include("gamification.urls")),
    path("api/health/", include("migration_tools.urls")),
]

# JSON errors for /api/ paths, Django's pages elsewhere (studymaster.api).
handler404 = "studymaster.api.page_not_found"
handler500 = "studymaster.api.server_error"
