"""Users and authenticated clients for the accounts tests."""

from __future__ import annotations

import itertools

from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_pair_for_user

PASSWORD = "correct-horse-battery-staple"
_sequence = itertools.count(1)


def user_create(**fields) -> User:
    number = next(_sequence)
    fields.setdefault("username", f"learner{number}")
    fields.setdefault("email", f"learner{number}@example.com")
    password = fields.pop("password", PASSWORD)
    return User.objects.create_user(password=password, **fields)


def client_for(user: User) -> tuple[APIClient, dict[str, str]]:
    """An APIClient sending a fresh access token of ``user``, and that token pair."""
    pair = token_pair_for_user(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    return client, pair
