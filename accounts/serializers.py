"""Input and output shapes of the accounts API. Field checks only; rules live in services."""

from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import User, validate_time_zone
from accounts.services import PROFILE_WRITABLE_FIELDS
from gamification.selectors import user_progress_get

# Long enough for any passphrase, short enough that hashing it is no denial of service.
PASSWORD_MAX_LENGTH = 256


def _password_field(**kwargs):
    return serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, **kwargs
    )


class RegisterInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = _password_field()
    time_zone = serializers.CharField(max_length=64, validators=[validate_time_zone], required=False)


class RegisterOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    username = serializers.CharField()
    email = serializers.EmailField()


class TokenObtainInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = _password_field()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = _password_field()
    new_password = _password_field()


class PasswordInputSerializer(serializers.Serializer):
    password = _password_field()


class ProfileUpdateInputSerializer(serializers.Serializer):
    """The writable profile fields. Any other field in the body is a 400 naming it, so that
    a client that tries to set its points learns that it cannot."""

    display_name = serializers.CharField(max_length=100, allow_blank=True)
    time_zone = serializers.CharField(max_length=64, validators=[validate_time_zone])
    leaderboard_opt_out = serializers.BooleanField()
    email = serializers.EmailField(max_length=254)
    # Needed to change the email (accounts.services.user_profile_update); never stored.
    current_password = _password_field(required=False)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - {*PROFILE_WRITABLE_FIELDS, "current_password"})
        if unknown:
            raise serializers.ValidationError(
                {field: ["This field is read-only or unknown."] for field in unknown}
            )
        return attrs


PROFILE_FIELDS = ("username", "email", "display_name", "time_zone", "leaderboard_opt_out")


# The profile, and the progress as the game shows it (gamification.selectors.user_progress_get).
# A comment, not a docstring: drf-spectacular would publish a docstring in the schema.
class ProfileOutputSerializer(serializers.ModelSerializer):
    points_to_next_level = serializers.IntegerField(read_only=True)
    # The stored streak is exact as of the last change only; the selector's is as of now.
    current_streak = serializers.IntegerField(read_only=True)

    class Meta:
        model = User
        fields = [
            *PROFILE_FIELDS,
            "points",
            "level",
            "points_to_next_level",
            "current_streak",
            "longest_streak",
            "total_minutes",
            "session_count",
        ]
        read_only_fields = fields

    def to_representation(self, user: User) -> dict:
        profile = {name: getattr(user, name) for name in PROFILE_FIELDS}
        return super().to_representation({**profile, **user_progress_get(user=user)})
