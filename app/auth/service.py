"""Accounts and tokens: register, log in, rotate refresh tokens, log out, make admins."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from app.auth.models import RefreshToken, TokenFamily, User
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.db import utcnow
from app.errors import APIError, Conflict, Unauthorized, register_messages
from app.extensions import db
from app.schemas import PHONE_PATTERN

register_messages({
    "phone_registered": {
        "zh": "该手机号已注册，请直接登录。",
        "en": "This phone number is already registered; please log in.",
    },
})


def find_user_by_phone(phone: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.phone == phone))


def register(phone: str, password: str, display_name: str) -> User:
    if find_user_by_phone(phone) is not None:
        raise Conflict("phone_registered")
    user = User(phone=phone, display_name=display_name, password_hash=hash_password(password))
    db.session.add(user)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        # Two registrations of one phone raced; the unique index decided.
        db.session.rollback()
        raise Conflict("phone_registered") from None
    return user


def authenticate(phone: str, password: str) -> User:
    """Return the user or fail with one message whether or not the phone is registered."""
    phone = phone.strip()  # as registration trims it
    # Only a well-formed number is looked up: anything else (NUL, lone surrogates, 32 bytes of
    # junk) cannot be registered, and some of it cannot even be sent to the database.
    user = find_user_by_phone(phone) if PHONE_PATTERN.fullmatch(phone) else None
    if not verify_password(user.password_hash if user else None, password):
        raise Unauthorized("invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def issue_tokens(user: User, family_id: str | None = None) -> dict:
    """Create an access/refresh pair in a login family (a new family on login)."""
    now = utcnow()
    if family_id is None:
        family_id = str(uuid.uuid4())
        db.session.add(TokenFamily(id=family_id, user_id=user.id, created_at=now))
        db.session.flush()  # the refresh token below refers to it
    claims = {"fam": family_id}
    identity = str(user.id)
    access = create_access_token(identity=identity, additional_claims=claims)
    refresh = create_refresh_token(identity=identity, additional_claims=claims)
    decoded = decode_token(refresh)
    db.session.add(RefreshToken(
        jti=decoded["jti"],
        family_id=family_id,
        issued_at=now,
        expires_at=_from_timestamp(decoded["exp"]),
    ))
    access_exp = decode_token(access)["exp"]
    db.session.flush()
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": max(0, int(access_exp - now.timestamp())),
    }


def login(phone: str, password: str) -> tuple[User, dict]:
    user = authenticate(phone, password)
    return user, issue_tokens(user)


def rotate_refresh_token(user: User, jwt_payload: dict) -> dict:
    """Spend a refresh token once and hand out a new pair in the same family.

    The conditional UPDATE makes "spend" atomic across workers: of two concurrent uses of one
    token exactly one matches `used_at IS NULL`. A token that was already spent means it leaked
    (or a client replayed it), so the whole family is revoked.
    """
    jti, family_id = jwt_payload["jti"], jwt_payload.get("fam")
    spent = db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == jti, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if spent != 1:
        revoke_family(family_id, reason="reuse")
        # The revocation must outlive this failed request.
        db.session.commit()
        raise Unauthorized("token_reused")
    return issue_tokens(user, family_id=family_id)


def revoke_family(family_id: str | None, reason: str) -> None:
    if not family_id:
        return
    db.session.execute(
        sa.update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def logout(jwt_payload: dict) -> None:
    revoke_family(jwt_payload.get("fam"), reason="logout")


def is_token_revoked(jwt_payload: dict) -> bool:
    family_id = jwt_payload.get("fam")
    if not family_id:
        return True  # every token we issue carries its family; anything else is not ours
    revoked_at = db.session.execute(
        sa.select(TokenFamily.revoked_at).where(TokenFamily.id == family_id)
    ).first()
    return revoked_at is None or revoked_at[0] is not None


def load_user(jwt_payload: dict) -> User | None:
    try:
        user_id = int(jwt_payload["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    return db.session.get(User, user_id)


def create_admin(phone: str, display_name: str, password: str | None) -> tuple[User, bool]:
    """Make `phone` a platform admin; create the user if needed. Returns (user, created).

    An existing user keeps their password: running the command again only grants the role.
    """
    user = find_user_by_phone(phone)
    if user is not None:
        user.is_admin = True
        return user, False
    if not password:
        raise APIError("validation_error", 422, errors={"password": ["required for a new admin"]})
    user = User(phone=phone, display_name=display_name, password_hash=hash_password(password),
                is_admin=True)
    db.session.add(user)
    db.session.flush()
    return user, True


def _from_timestamp(value: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value, UTC)
