from django.contrib import admin
from django.urls import include, path

from migration_tools.health import admin_health_view
from studymaster.observability import metrics_view

urlpatterns = [
    path("admin/health/", admin_health_view, name="admin-health"),
    path("admin/", admin.site.urls),
    path("api/", include("accounts.urls")),
    path("api/", include("sessions_app.urls")),
    path("api/", include("gamification.urls")),
    path("api/health/", include("migration_tools.urls")),
    path("metrics", metrics_view, name="metrics"),
]
