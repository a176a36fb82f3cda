"""Operations' URLs, included at the root by studymaster/urls.py (before the admin's)."""

from django.urls import include, path

from operations import views

health_patterns = [
    path("", views.detail, name="detail"),
    path("live/", views.live, name="live"),
    path("ready/", views.ready, name="ready"),
]

urlpatterns = [
    # Before admin/ in the project's URLs: the admin's catch-all would answer this path otherwise.
    path("admin/health/", views.admin_health_view, name="admin-health"),
    path("api/health/", include((health_patterns, "health"))),
    path("metrics", views.metrics_view, name="metrics"),
]
