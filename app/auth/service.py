"""Accounts and tokens: register, log in, rotate refresh tokens, log out, reset passwords,
make admins."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import ExpiredSignatureError, PyJWTError

from app import audit
from app.auth.models import PasswordReset, RefreshToken, TokenFamily, User
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.communities.models import Membership, Role
from app.db import utcnow
from app.errors import APIError, Conflict, Forbidden, NotFound, Unauthorized, register_messages
from app.extensions import db
from app.i18n import N_
from app.schemas import PHONE_PATTERN

RESET_CODE_DIGITS = 8  # typed on a phone's number pad: 10^8 codes, 5 tries each
RESET_CODE_LIFETIME = timedelta(minutes=30)
MAX_RESET_ATTEMPTS = 5

register_messages({
    "phone_registered": N_("该手机号已注册，请直接登录。"),
    "invalid_reset_code": N_("手机号或重置码不正确，或重置码已失效（30 分钟内有效，只能用一次）。"
                             "请联系社区工作人员重新获取重置码。"),
    "reset_needs_admin": N_("该账号是社区工作人员或平台管理员，密码只能由平台管理员重置。"),
    "reset_other_communities": N_("此人还是其他社区的成员，为保护其账号，请由平台管理员或此人所在各社区的"
                                  "工作人员为其重置密码。"),
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
    if family_id is None:
        family_id = str(uuid.uuid4())
        db.session.add(TokenFamily(id=family_id, user_id=user.id, created_at=utcnow()))
        db.session.flush()  # the refresh token below refers to it
    return encode_pair(_new_refresh_token(family_id), user.id)


def _new_refresh_token(family_id: str) -> RefreshToken:
    # JWT times are whole seconds: stored as such, the pair can be encoded again identically.
    issued = int(time.time())
    token = RefreshToken(
        jti=str(uuid.uuid4()),
        family_id=family_id,
        issued_at=_from_timestamp(issued),
        expires_at=_from_timestamp(issued + int(jwt_config.refresh_expires.total_seconds())),
        access_jti=str(uuid.uuid4()),
    )
    db.session.add(token)
    db.session.flush()
    return token


def encode_pair(token: RefreshToken, user_id: int) -> dict:
    """Encode the access/refresh pair of a stored refresh token: the same strings every time.

    Every claim flask-jwt-extended would draw afresh (jti, iat, nbf, exp, csrf) is taken from
    the row or derived from it, and HS256 signing is deterministic, so no bearer token need be
    stored.
    """
    issued = int(token.issued_at.timestamp())
    access_expires = issued + int(jwt_config.access_expires.total_seconds())
    claims: dict = {"fam": token.family_id, "iat": issued}
    if jwt_config.encode_nbf:
        claims["nbf"] = issued
    identity = str(user_id)
    access = create_access_token(identity=identity, additional_claims={
        **claims, **_csrf_claim(token.access_jti), "jti": token.access_jti,
        "exp": access_expires})
    refresh = create_refresh_token(identity=identity, additional_claims={
        **claims, **_csrf_claim(token.jti), "jti": token.jti,
        "exp": int(token.expires_at.timestamp())})
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": max(0, access_expires - int(time.time())),
    }


def _csrf_claim(jti: str) -> dict:
    # Only with flask-jwt-extended's own cookie CSRF check on (the pages use their own): the
    # value it would draw at random, derived from the token's id with the signing secret.
    if not jwt_config.cookie_csrf_protect:
        return {}
    key = current_app.config["JWT_SECRET_KEY"].encode()
    return {"csrf": hmac.new(key, f"csrf:{jti}".encode(), hashlib.sha256).hexdigest()}


def login(phone: str, password: str) -> tuple[User, dict]:
    user = authenticate(phone, password)
    return user, issue_tokens(user)


def rotate_refresh_token(user: User, jwt_payload: dict) -> dict:
    """Spend a refresh token and hand out its successor pair in the same family.

    The conditional UPDATE makes "spend" atomic across workers: of concurrent uses of one token
    exactly one matches `used_at IS NULL` and issues the successor (on PostgreSQL the others'
    UPDATE waits for the winner's row lock, on SQLite for its BEGIN IMMEDIATE, and then finds
    the token spent). Presented again within REFRESH_REUSE_GRACE_SECONDS of that — two tabs,
    or those concurrent losers — it answers the same successor pair. Later, a spent token
    means it leaked (or a client replayed it), so the whole family is revoked.

    The caller has checked the token (signature, expiry, type, family not revoked), as
    `@login_required(refresh=True)` does; page code holding only the cookie calls `refresh_pair`.
    """
    jti, family_id = jwt_payload["jti"], jwt_payload.get("fam")
    now = utcnow()
    spent = db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == jti, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent == 1:
        successor = _new_refresh_token(family_id)
        db.session.execute(
            sa.update(RefreshToken).where(RefreshToken.jti == jti)
            .values(successor_jti=successor.jti)
            .execution_options(synchronize_session=False)
        )
        return encode_pair(successor, user.id)
    successor = _successor_within_grace(jti, now)
    if successor is not None:
        return encode_pair(successor, user.id)
    revoke_family(family_id, reason="reuse")
    # The revocation must outlive this failed request.
    db.session.commit()
    raise Unauthorized("token_reused")


def _successor_within_grace(jti: str, now: datetime) -> RefreshToken | None:
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"])
    spent = db.session.execute(
        sa.select(RefreshToken.used_at, RefreshToken.successor_jti).where(RefreshToken.jti == jti)
    ).first()
    if spent is None or spent.successor_jti is None or now - spent.used_at > grace:
        return None
    successor = db.session.get(RefreshToken, spent.successor_jti)
    if successor is None or successor.access_jti is None:
        return None
    return successor


def refresh_pair(refresh_token: str) -> tuple[User, dict]:
    """Rotate a refresh token given as a string (a page's cookie): (user, its successor pair).

    Checks what `@login_required(refresh=True)` checks for the API, then `rotate_refresh_token`.
    """
    try:
        payload = decode_token(refresh_token)
    except ExpiredSignatureError:
        raise Unauthorized("token_expired") from None
    except (JWTExtendedException, PyJWTError):
        raise Unauthorized("unauthorized") from None
    if payload.get("type") != "refresh":
        raise Unauthorized("unauthorized")
    if is_token_revoked(payload):
        raise Unauthorized("token_revoked")
    user = load_user(payload)
    if user is None:
        raise Unauthorized("token_revoked")
    return user, rotate_refresh_token(user, payload)


def revoke_family(family_id: str | None, reason: str) -> None:
    if not family_id:
        return
    db.session.execute(
        sa.update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    forget_token_holders()


def revoke_every_login(user_id: int, reason: str) -> None:
    db.session.execute(
        sa.update(TokenFamily)
        .where(TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    forget_token_holders()


def logout(jwt_payload: dict) -> None:
    revoke_family(jwt_payload.get("fam"), reason="logout")


# --- password reset by an organiser (找回密码) ------------------------------------------------

def issue_password_reset(community_id: int, user_id: int,
                         organiser: User) -> tuple[str, PasswordReset]:
    """Issue a one-time code (30 min) with which a member of the community sets a new password.

    The caller has checked that `organiser` organises the community. The person must be a
    member of it (404 otherwise, as for the other member routes). Staff accounts (organisers of
    any community, platform admins) hold more than their own data, so only a platform admin
    resets those. A new code supersedes the person's unused ones; the code is shown once, here,
    and only its keyed hash is stored. Recorded in the community's audit log, without the code.
    """
    if Membership.find(community_id, user_id) is None:
        raise NotFound()
    user = db.session.get(User, user_id)
    if not organiser.is_admin and (user.is_admin or _is_staff(user_id)):
        raise Forbidden("reset_needs_admin")
    if not organiser.is_admin and _member_elsewhere(user_id, organiser.id):
        # A reset opens the whole account, in every community: an organiser's power stays
        # within their own communities (else: add someone by phone, reset, take their points).
        raise Forbidden("reset_other_communities")
    now = utcnow()
    _supersede_codes(user_id, now)
    code = f"{secrets.randbelow(10 ** RESET_CODE_DIGITS):0{RESET_CODE_DIGITS}d}"
    reset = PasswordReset(user_id=user_id, community_id=community_id,
                          code_hash=_reset_code_hash(code), issued_by_id=organiser.id,
                          created_at=now, expires_at=now + RESET_CODE_LIFETIME, attempts=0)
    db.session.add(reset)
    db.session.flush()
    audit.record(community_id, organiser.id, "account.reset_code_issued", subject_user_id=user_id,
                 reset_id=reset.id, expires_at=reset.expires_at.isoformat())
    return code, reset


def reset_password(phone: str, code: str, new_password: str) -> User:
    """Set a new password with a reset code, spend the code and log the person out everywhere.

    Unknown phone, wrong, used, superseded, expired or locked code: one answer for all. Each
    code allows MAX_RESET_ATTEMPTS tries; a try is taken by a conditional UPDATE before the
    code is compared, so concurrent guesses get no more (PostgreSQL's row lock, SQLite's
    BEGIN IMMEDIATE, serialise them).
    """
    now = utcnow()
    user = find_user_by_phone(phone) if PHONE_PATTERN.fullmatch(phone) else None
    reset = None
    if user is not None:
        reset = db.session.scalar(
            sa.select(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                   PasswordReset.superseded_at.is_(None))
            .order_by(PasswordReset.id.desc()).limit(1))
    if reset is None or not _take_reset_attempt(reset.id, now):
        raise APIError("invalid_reset_code", 400)
    if not hmac.compare_digest(reset.code_hash, _reset_code_hash(code)):
        db.session.commit()  # the spent try must outlive this failed request
        raise APIError("invalid_reset_code", 400)
    reset.used_at = now
    user.password_hash = hash_password(new_password)
    db.session.flush()
    _supersede_codes(user.id, now)  # any other code, issued concurrently with this one
    revoke_every_login(user.id, reason="password_reset")
    audit.record(reset.community_id, user.id, "account.password_reset", subject_user_id=user.id,
                 reset_id=reset.id)
    return user


def _take_reset_attempt(reset_id: int, now: datetime) -> bool:
    return db.session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.id == reset_id, PasswordReset.used_at.is_(None),
               PasswordReset.superseded_at.is_(None), PasswordReset.expires_at > now,
               PasswordReset.attempts < MAX_RESET_ATTEMPTS)
        .values(attempts=PasswordReset.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _supersede_codes(user_id: int, now: datetime) -> None:
    db.session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None),
               PasswordReset.superseded_at.is_(None))
        .values(superseded_at=now)
        .execution_options(synchronize_session=False)
    )


def _reset_code_hash(code: str) -> str:
    # Keyed with the server's secret: a copy of the database alone cannot try the 10^8 codes.
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"password-reset:{code}".encode(), hashlib.sha256).hexdigest()


def _member_elsewhere(user_id: int, organiser_id: int) -> bool:
    """Whether the person belongs to a community the organiser does not organise."""
    organised = sa.select(Membership.community_id).where(
        Membership.user_id == organiser_id, Membership.role == Role.ORGANISER.value)
    return bool(db.session.scalar(sa.select(sa.exists().where(
        Membership.user_id == user_id, Membership.community_id.not_in(organised)))))


def _is_staff(user_id: int) -> bool:
    return bool(db.session.scalar(sa.select(sa.exists().where(
        Membership.user_id == user_id, Membership.role == Role.ORGANISER.value))))


def token_holder(jwt_payload: dict) -> User | None:
    """The user a token speaks for, or None when its login was revoked (or is not ours).

    One query answers both questions every authenticated request asks: is the token's family
    (login) unrevoked, and who is its user. The answer is kept for the request, so the
    revocation check and the user lookup of flask-jwt-extended share it.
    """
    family_id, subject = jwt_payload.get("fam"), jwt_payload.get("sub")
    if not family_id:
        return None  # every token we issue carries its family; anything else is not ours
    cache = g.setdefault("_token_holders", {})
    if family_id not in cache:
        try:
            user_id = int(subject)
        except (TypeError, ValueError):
            return None
        cache[family_id] = db.session.scalar(_TOKEN_HOLDER, {"family": family_id,
                                                             "user": user_id})
    return cache[family_id]


# Built once: composing a statement costs more than running it (every request runs this one).
_TOKEN_HOLDER = (sa.select(User).join(TokenFamily, TokenFamily.user_id == User.id)
                 .where(TokenFamily.id == sa.bindparam("family"),
                        TokenFamily.revoked_at.is_(None), User.id == sa.bindparam("user")))


def is_token_revoked(jwt_payload: dict) -> bool:
    return token_holder(jwt_payload) is None


def load_user(jwt_payload: dict) -> User | None:
    return token_holder(jwt_payload)


def forget_token_holders() -> None:
    """A login was revoked in this request: later checks in it must ask the database again."""
    g.pop("_token_holders", None)


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


def _from_timestamp(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)
