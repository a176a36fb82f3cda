"""Accounts services: registration, tokens, password and profile changes; all of this app's writes.

Token rules (docs/api.md, "Accounts and authentication"):
- a refresh token is used once: refreshing revokes it (its ``jti`` goes into RevokedToken) and
  returns a new pair; a second use fails on RevokedToken's unique index on ``jti``, even when
  two requests race;
- the tokens of one login are a family (the ``family`` claim, set at login, carried on each
  rotation): a second use of a rotated-out token, and logging out, revoke the whole family
  (RevokedTokenFamily), so the successors of a stolen token stop working too;
- tokens carry a hash of the password hash (simplejwt's CHECK_REVOKE_TOKEN), so a password
  change ends every earlier access and refresh token.

Progress fields (points, streaks...) are never written here: updates name their fields, so a
profile change cannot overwrite points that a study session added in the meantime.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import RevokedToken, RevokedTokenFamily, User
from accounts.usernames import username_fields
from gamification.services import leaderboard_listing_set
from studymaster.db import db_datetime, run_in_transaction
from studymaster.retry import retry_idempotent

# The claim naming the login a refresh token descends from (see token_refresh).
FAMILY_CLAIM = "family"
PROFILE_WRITABLE_FIELDS = ("display_name", "time_zone", "leaderboard_opt_out", "email")
# A user's time zone changes at most this often through the API (docs/gamification.md).
TIME_ZONE_CHANGE_INTERVAL = timedelta(hours=24)


def email_normalize(email: str) -> str:
    """Emails are kept lower-cased and trimmed, which makes the unique index case-insensitive."""
    return email.strip().lower()


def _password_check(password: str, *, user: User, field: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


USERNAME_TAKEN = "A user with that username already exists."
USERNAME_CONFUSABLE = "That username looks like an existing one. Choose another."
EMAIL_TAKEN = "A user with that email already exists."
WRONG_CURRENT_PASSWORD = "The current password is not correct."  # noqa: S105 - a message


def _clashes(*, username: str | None, email: str | None, exclude_pk=None) -> dict[str, str]:
    """Field errors for a username another account has, up to case, Unicode width forms or
    look-alike characters (accounts.usernames), or an email it has; one query on unique indexes."""
    derived = username_fields(username) if username else {}
    condition = Q()
    for field, value in derived.items():
        condition |= Q(**{field: value})
    if email:
        condition |= Q(email=email)
    if not condition:
        return {}
    query = User.objects.filter(condition)
    if exclude_pk is not None:
        query = query.exclude(pk=exclude_pk)
    taken = {}
    for other_key, other_skeleton, other_email in query.values_list(
        "username_key", "username_skeleton", "email"
    ):
        if derived and other_key == derived["username_key"]:
            taken["username"] = USERNAME_TAKEN
        elif derived and other_skeleton == derived["username_skeleton"]:
            taken.setdefault("username", USERNAME_CONFUSABLE)
        if email and other_email == email:
            taken["email"] = EMAIL_TAKEN
    return taken


def username_check_available(*, username: str, exclude_pk=None) -> None:
    """Raise ValidationError when another account has ``username`` up to case, width forms or
    look-alike characters; the admin's user forms ask this, as registration does."""
    taken = _clashes(username=username, email=None, exclude_pk=exclude_pk)
    if taken:
        raise ValidationError(taken["username"], code="username_taken")


def user_register(*, username: str, email: str, password: str, time_zone: str = "UTC") -> User:
    """Create an account. Raises ValidationError naming the field for a weak password, or a
    username (see :func:`username_check_available`) or email that is taken, also when two
    registrations race. Setting the time zone here is not a change (see user_profile_update)."""
    user = User(username=User.normalize_username(username), email=email_normalize(email), time_zone=time_zone)
    errors = _clashes(username=user.username, email=user.email)
    try:
        _password_check(password, user=user, field="password")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    try:
        user.save(force_insert=True)
    except IntegrityError:
        # Lost a race to the unique indexes: say which field, as for a plain duplicate.
        raise ValidationError(
            _clashes(username=user.username, email=user.email)
            or {"username": "A user with that username or email already exists."}
        ) from None
    return user


def token_pair_for_user(*, user: User, family: str | None = None) -> dict[str, str]:
    """A new ``{access, refresh}`` pair; no database access. ``family`` is carried over when a
    refresh token is rotated; without it the pair starts a new family (a login)."""
    refresh = RefreshToken.for_user(user)
    refresh[FAMILY_CLAIM] = family or uuid.uuid4().hex
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def token_obtain(*, username: str, password: str, request=None) -> dict[str, str]:
    """Log in. Raises AuthenticationFailed (401) for wrong credentials or an inactive account."""
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise AuthenticationFailed(
            "No active account found with the given credentials.", code="invalid_credentials"
        )
    return token_pair_for_user(user=user)


def _refresh_token_decode(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise InvalidToken({"detail": str(exc), "code": "token_not_valid"}) from None


def _token_family(token: RefreshToken) -> str:
    # A token issued before families existed is a family of its own; its successors carry it.
    return str(token.get(FAMILY_CLAIM) or token[jwt_settings.JTI_CLAIM])[:64]


def _refresh_token_revoke(token: RefreshToken) -> bool:
    """Put ``token`` on the denylist until it expires; False if it was there already."""
    try:
        RevokedToken.objects.create(
            jti=token[jwt_settings.JTI_CLAIM],
            expires_at=datetime.fromtimestamp(token["exp"], tz=UTC),
        )
    except IntegrityError:
        return False
    return True


def _token_family_revoke(family: str) -> None:
    """Revoke every token of ``family`` until the last one it could hold has expired. Idempotent."""
    expires_at = timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME
    with contextlib.suppress(IntegrityError):  # revoked already
        RevokedTokenFamily.objects.create(family=family, expires_at=expires_at)


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Exchange a refresh token for a new pair of the same family, once. Raises InvalidToken (401)
    for a token that is expired, malformed, rotated out, of a revoked family (logged out, or
    reused), or older than the last password change.

    Reuse of a rotated-out token revokes its whole family: whoever presents it holds a copy, so
    the tokens rotated from it since are not safe either, and the owner logs in again.
    """
    token = _refresh_token_decode(refresh)
    family = _token_family(token)
    # The family is checked before the token is claimed: a racer can revoke the family only after
    # its own claim failed, so after the winner's claim, hence after the winner's check. Checked the
    # other way round, a losing racer's revocation could also refuse the winner, and nobody would
    # get a pair.
    if RevokedTokenFamily.objects.filter(family=family).exists():
        raise InvalidToken({"detail": "Token has been rotated out or revoked.", "code": "token_revoked"})
    if not _refresh_token_revoke(token):
        _token_family_revoke(family)
        raise InvalidToken({"detail": "Token has been rotated out or revoked.", "code": "token_revoked"})
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM), is_active=True).first()
    if user is None or token.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise InvalidToken(
            {"detail": "Token is no longer valid for this account.", "code": "token_not_valid"}
        )
    return token_pair_for_user(user=user, family=family)


def token_revoke(*, refresh: str, user: User) -> None:
    """Log out: revoke the family of ``user``'s refresh token (that token and every token rotated
    from the same login). Revoking it twice is fine. Raises ValidationError on ``refresh`` for a
    token that is invalid or belongs to someone else."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise ValidationError({"refresh": str(exc)}) from None
    if token.get(jwt_settings.USER_ID_CLAIM) != str(user.pk):
        raise ValidationError({"refresh": "This refresh token belongs to another account."})
    _token_family_revoke(_token_family(token))


def password_change(*, user: User, old_password: str, new_password: str) -> dict[str, str]:
    """Change the password and return a new token pair; every earlier token stops working.
    Raises ValidationError naming ``old_password`` or ``new_password``."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": WRONG_CURRENT_PASSWORD})
    _password_check(new_password, user=user, field="new_password")
    user.set_password(new_password)
    _user_fields_set(user.pk, password=user.password)
    return token_pair_for_user(user=user)


def _time_zone_change_check(user: User, now: datetime) -> None:
    last = user.time_zone_changed_at
    if last is not None and now - last < TIME_ZONE_CHANGE_INTERVAL:
        raise ValidationError({"time_zone": _time_zone_too_soon(last)})


def _time_zone_too_soon(last: datetime) -> str:
    following = (last + TIME_ZONE_CHANGE_INTERVAL).astimezone(UTC)
    return f"The time zone can change once every 24 hours; next from {following:%Y-%m-%d %H:%M} UTC."


def user_profile_update(*, user: User, changes: dict, current_password: str | None = None) -> User:
    """Apply validated profile ``changes`` (only PROFILE_WRITABLE_FIELDS) to ``user`` and save
    just those fields. A new email needs the account's ``current_password``, checked before
    anything is said about the email. A new time zone is refused within 24 hours of the last
    one set here, even by racing requests (quests count days in it: docs/gamification.md).
    Raises ValidationError on ``current_password`` (missing or wrong), ``email`` (another account
    has it) or ``time_zone`` (changed too recently)."""
    changes = {field: value for field, value in changes.items() if field in PROFILE_WRITABLE_FIELDS}
    now = db_datetime(timezone.now())  # compared with the stored value below
    if changes.get("time_zone", user.time_zone) == user.time_zone:
        changes.pop("time_zone", None)
    else:
        _time_zone_change_check(user, now)
        changes["time_zone_changed_at"] = now
    if "email" in changes:
        changes["email"] = email_normalize(changes["email"])
        if changes["email"] == user.email:
            del changes["email"]
        else:
            if not current_password:
                raise ValidationError({"current_password": "Changing the email needs the current password."})
            if not user.check_password(current_password):
                raise ValidationError({"current_password": WRONG_CURRENT_PASSWORD})
            taken = _clashes(username=None, email=changes["email"], exclude_pk=user.pk)
            if taken:
                raise ValidationError(taken)
    if not changes:
        return user
    # A time zone change is written only if no other one got in since the check.
    unchanged_since = (
        Q(time_zone_changed_at__isnull=True) | Q(time_zone_changed_at__lte=now - TIME_ZONE_CHANGE_INTERVAL)
        if "time_zone_changed_at" in changes
        else Q()
    )
    try:
        written = _user_fields_set(user.pk, unchanged_since, **changes)
    except IntegrityError:
        raise ValidationError({"email": EMAIL_TAKEN}) from None
    if not written and "time_zone_changed_at" in changes:
        stored = User.objects.filter(pk=user.pk).values_list("time_zone_changed_at", flat=True).first()
        if stored is not None and stored != now:  # not a retry of our own write: a racing change won
            raise ValidationError({"time_zone": _time_zone_too_soon(stored)})
    listing_changed = changes.get("leaderboard_opt_out", user.leaderboard_opt_out) != user.leaderboard_opt_out
    for field, value in changes.items():
        setattr(user, field, value)
    if listing_changed:
        leaderboard_listing_set(user_id=user.pk)
    return user


@retry_idempotent(operation="user_fields_set")
def _user_fields_set(pk, condition: Q | None = None, **fields) -> int:
    """``$set`` fields of one user (that also matches ``condition``); how many were matched.
    The ORM sends update_many, which the driver never retries."""
    return User.objects.filter(condition or Q(), pk=pk).update(**fields)


def user_delete(*, user: User, password: str) -> None:
    """Delete the account and everything that belongs to it (CASCADE foreign keys).
    Raises ValidationError on ``password`` when it is not the account's password."""
    if not user.check_password(password):
        raise ValidationError({"password": "The password is not correct."})
    # One transaction: a failure midway must not leave the user without its sessions or ledger.
    pk = user.pk  # by pk: user.delete() would clear user.pk, and the transaction may be rerun
    run_in_transaction(lambda: User.objects.filter(pk=pk).delete())
