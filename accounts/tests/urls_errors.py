"""The project's URLs plus API views that fail, for the handler tests."""

from django.urls import path

from studymaster.urls import handler404, handler500  # noqa: F401
from studymaster.urls import urlpatterns as project_urlpatterns


def api_crash(request):
    raise RuntimeError("an unexpected failure inside an API view")


urlpatterns = [path("api/test-crash/", api_crash), *project_urlpatterns]
