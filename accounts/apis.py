"""Thin views: parse input, call one service, serialize output."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import serializers, services
from accounts.throttles import LoginThrottle, PasswordCheckThrottle, ProfileThrottle, RegisterThrottle


class PublicAPIView(APIView):
    """No authentication at all, so a stale Authorization header cannot turn a login into a 401."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        # Wrong credentials are a 401 (DRF makes it a 403 when a view has no authenticator).
        return 'Bearer realm="api"'


class RegisterApi(PublicAPIView):
    throttle_classes = [RegisterThrottle]

    @extend_schema(
        request=serializers.RegisterInputSerializer,
        responses={201: serializers.RegisterOutputSerializer},
        auth=[],
    )
    def post(self, request):
        data = _valid(serializers.RegisterInputSerializer, request)
        user = services.user_register(**data)
        return Response(serializers.RegisterOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenObtainApi(PublicAPIView):
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=serializers.TokenObtainInputSerializer,
        responses={200: serializers.TokenPairSerializer},
        auth=[],
    )
    def post(self, request):
        data = _valid(serializers.TokenObtainInputSerializer, request)
        pair = services.token_obtain(request=request, **data)
        return Response(serializers.TokenPairSerializer(pair).data)


class TokenRefreshApi(PublicAPIView):
    @extend_schema(
        request=serializers.RefreshInputSerializer,
        responses={200: serializers.TokenPairSerializer},
        auth=[],
    )
    def post(self, request):
        data = _valid(serializers.RefreshInputSerializer, request)
        pair = services.token_refresh(refresh=data["refresh"])
        return Response(serializers.TokenPairSerializer(pair).data)


class LogoutApi(APIView):
    @extend_schema(request=serializers.RefreshInputSerializer, responses={205: None})
    def post(self, request):
        data = _valid(serializers.RefreshInputSerializer, request)
        services.token_revoke(refresh=data["refresh"], user=request.user)
        return Response(status=status.HTTP_205_RESET_CONTENT)


class PasswordChangeApi(APIView):
    throttle_classes = [PasswordCheckThrottle]

    @extend_schema(
        request=serializers.PasswordChangeInputSerializer,
        responses={200: serializers.TokenPairSerializer},
    )
    def post(self, request):
        data = _valid(serializers.PasswordChangeInputSerializer, request)
        pair = services.password_change(user=request.user, **data)
        return Response(serializers.TokenPairSerializer(pair).data)


class MeApi(APIView):
    def get_throttles(self):
        # A deletion is a password check; a change is a profile change, and a password check too
        # when it presents the password (an email change). Reading is not throttled.
        if self.request.method == "DELETE":
            return [PasswordCheckThrottle()]
        if self.request.method != "PATCH":
            return []
        data = self.request.data
        presents_password = isinstance(data, dict) and "current_password" in data
        return [ProfileThrottle(), *([PasswordCheckThrottle()] if presents_password else [])]

    @extend_schema(responses={200: serializers.ProfileOutputSerializer})
    def get(self, request):
        return Response(serializers.ProfileOutputSerializer(request.user).data)

    @extend_schema(
        request=serializers.ProfileUpdateInputSerializer,
        responses={200: serializers.ProfileOutputSerializer},
    )
    def patch(self, request):
        data = _valid(serializers.ProfileUpdateInputSerializer, request, partial=True)
        current_password = data.pop("current_password", None)
        user = services.user_profile_update(
            user=request.user, changes=data, current_password=current_password
        )
        return Response(serializers.ProfileOutputSerializer(user).data)

    @extend_schema(request=serializers.PasswordInputSerializer, responses={204: None})
    def delete(self, request):
        data = _valid(serializers.PasswordInputSerializer, request)
        services.user_delete(user=request.user, password=data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


def _valid(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
