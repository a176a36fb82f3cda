from django.urls import path

from migration_tools import health

app_name = "health"

urlpatterns = [
    path("", health.detail, name="detail"),
    path("live/", health.live, name="live"),
    path("ready/", health.ready, name="ready"),
]
