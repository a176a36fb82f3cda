"""A URLconf for the redaction test: a view that fails while holding a URI in a local variable."""

from django.conf import settings
from django.urls import path


def boom(request):
    connection_string = settings.ATLAS_MONGODB_URI  # a frame local the error page would show
    raise RuntimeError(f"could not reach {connection_string}")


urlpatterns = [path("boom/", boom)]
