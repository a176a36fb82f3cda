from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import apis

urlpatterns = [
    path("auth/register/", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/token/", apis.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/password/", apis.PasswordChangeApi.as_view(), name="auth-password"),
    path("me/", apis.MeApi.as_view(), name="me"),
    # The API's description; public, like the login it documents.
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema",
            template_name="accounts/swagger_ui.html",  # no inline style, for the CSP
            authentication_classes=[],
            permission_classes=[],
        ),
        name="docs",
    ),
]
