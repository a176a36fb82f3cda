"""The project's URLs plus two small ORM views, for fault tests through Django's own connection."""

from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from studymaster.urls import urlpatterns as project_urlpatterns


def user_count(request):
    """A plain Django view: one ORM read."""
    return JsonResponse({"users": get_user_model().objects.count()})


class UserCreateApi(APIView):
    """A DRF view: one ORM write (an insert)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        user = get_user_model().objects.create(username=request.data["username"])
        return Response({"id": str(user.pk)}, status=201)


urlpatterns = [
    path("faults/users/count/", user_count),
    path("faults/users/", csrf_exempt(UserCreateApi.as_view())),
    *project_urlpatterns,
]
