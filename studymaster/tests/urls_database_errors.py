"""A URLconf for the error-mapping tests: views that fail with a given database error."""

from django.urls import path
from pymongo.errors import AutoReconnect, OperationFailure, WaitQueueTimeoutError
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

ERRORS = {
    "transient": lambda: AutoReconnect("127.0.0.1:27017: connection closed"),
    "pool": lambda: WaitQueueTimeoutError("Timed out while checking out a connection from connection pool"),
    "quota": lambda: OperationFailure(
        "you are over your space quota, using 513 MB of 512 MB",
        8000,
        {"ok": 0, "errmsg": "you are over your space quota, using 513 MB of 512 MB", "code": 8000},
    ),
    "auth": lambda: OperationFailure(
        "bad auth : authentication failed", 8000, {"errmsg": "bad auth : authentication failed", "code": 8000}
    ),
}


def plain_view(request, name):
    raise ERRORS[name]()


class ApiView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request, name):
        raise ERRORS[name]()


urlpatterns = [
    path("plain/<str:name>/", plain_view),
    path("api/<str:name>/", ApiView.as_view()),
]
