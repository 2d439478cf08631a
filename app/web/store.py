"""Pages of the points store (积分兑换): rewards, redeeming with a confirmation, my redemptions
with the pickup code as a QR for the counter, and my member card."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Response, current_app, flash, g, request
from flask_jwt_extended import current_user

from app import qr
from app.communities import access
from app.communities.models import Role
from app.db import paginate, utcnow
from app.errors import APIError, NotFound, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import service as ledger
from app.store import service
from app.store.models import AWAITING_PICKUP, FULFILLED, REWARD_KINDS, Redemption, Reward
from app.store.schemas import CancelSchema, RedeemSchema
from app.web.forms import claim_form, complete_form, new_form_token, parse
from app.web.pages import page_arg, page_blueprint, render, role_required, see_other

bp = page_blueprint("shop", __name__)

PER_PAGE = 20
MAX_QUANTITY = 10  # RedeemSchema's limit
MEMBERS = (Role.RESIDENT, Role.VOLUNTEER, Role.ORGANISER)
QR_PIXELS = 512
STATUS_LABELS = {status: N_(label) for status, label in service.STATUS_LABELS.items()}
# What to do next after each refusal of a redemption, and where.
NEXT_STEPS = {
    "insufficient_points": (N_("认领并完成居民的心愿就能赚积分；也可以选一件积分更少的奖品。"),
                            "/volunteer/wishes", N_("去认领心愿")),
    "out_of_stock": (N_("这件奖品已经换完了，看看其他奖品吧。"), "/store", N_("看看其他奖品")),
    "limit_reached": (N_("下个月 1 日起可以再兑换，先看看其他奖品吧。"), "/store", N_("看看其他奖品")),
    "reward_inactive": (N_("这件奖品已下架，看看其他奖品吧。"), "/store", N_("看看其他奖品")),
}


def _public(path: str, **params) -> str:
    """An absolute URL on our public address (what a phone camera opens from a QR)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path + "?" + urlencode(params)


def _private_png(text: str) -> Response:
    """A QR that lets its holder collect goods or spend points: never kept by any cache."""
    response = Response(qr.png(text, QR_PIXELS), mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- the rewards ----------------------------------------------------------------------------

@bp.get("/store")
@role_required(*MEMBERS)
def rewards():
    """Active rewards of the current community, what I can afford marked; my balance on top."""
    page_number = page_arg()
    cid = g.community.id
    page = paginate(db.session, service.rewards_query(cid, only_active=True), page_number, PER_PAGE)
    balance = ledger.points_summary(cid, current_user.id)["balance"]
    taken = _taken_this_month(current_user.id, [r.id for r in page["items"]])
    items = [_offer(reward, balance, taken.get(reward.id, 0)) for reward in page["items"]]
    last = max(1, -(-page["total"] // PER_PAGE))
    return render("store/index.html", items=items, balance=balance, page=page_number, last=last)


def _taken_this_month(user_id: int, reward_ids: list[int]) -> dict[int, int]:
    """How many of each reward the user took this (Asia/Shanghai) month, as the limit counts."""
    if not reward_ids:
        return {}
    rows = db.session.execute(
        sa.select(Redemption.reward_id, sa.func.sum(Redemption.quantity))
        .where(Redemption.user_id == user_id, Redemption.reward_id.in_(reward_ids),
               Redemption.status.in_([AWAITING_PICKUP, FULFILLED]),
               Redemption.created_at >= service.month_start_utc(utcnow()))
        .group_by(Redemption.reward_id)).all()
    return {reward_id: int(quantity) for reward_id, quantity in rows}


def _offer(reward: Reward, balance: int, taken: int) -> dict:
    """A reward as the person sees it: can they take one now, and if not, why not in words."""
    limit_left = (None if reward.per_user_monthly_limit is None
                  else max(0, reward.per_user_monthly_limit - taken))
    most = min([MAX_QUANTITY, *(n for n in (reward.stock, limit_left) if n is not None)])
    if not reward.active:
        blocked = gettext("已下架")
    elif reward.stock is not None and reward.stock <= 0:
        blocked = gettext("已经换完了")
    elif limit_left == 0:
        blocked = gettext("本月已达兑换上限")
    elif balance < reward.cost:
        blocked = gettext("还差 {n} 积分").format(n=reward.cost - balance)
    else:
        blocked = None
    return {"reward": reward, "kind_label": gettext(REWARD_KINDS[reward.kind]),
            "affordable": balance >= reward.cost, "taken": taken, "limit_left": limit_left,
            "most": max(0, most), "blocked": blocked}


def _load_reward(reward_id: int) -> Reward:
    """A reward of one of my communities; inactive ones only for its organisers (as the API)."""
    reward = access.load(Reward, reward_id)
    if not reward.active and not access.is_organiser(reward.community_id):
        raise NotFound()
    return reward


def _confirm_page(reward: Reward, status: int = 200, *, form=None, token: str | None = None,
                  refusal: str | None = None, slug: str | None = None):
    balance = ledger.points_summary(reward.community_id, current_user.id)["balance"]
    offer = _offer(reward, balance, _taken_this_month(current_user.id, [reward.id]).get(reward.id, 0))
    quantities = [(n, gettext("{n} 件：共 {total} 积分，兑换后余额 {left}").format(
        n=n, total=n * reward.cost, left=balance - n * reward.cost))
        for n in range(1, max(1, offer["most"]) + 1) if n == 1 or n * reward.cost <= balance]
    next_step = NEXT_STEPS.get(slug) if slug else None
    return render("store/confirm.html", status, offer=offer, balance=balance, form=form,
                  quantities=quantities, form_token=token or new_form_token(), refusal=refusal,
                  next_step=next_step)


@bp.get("/store/rewards/<int:reward_id>")
@role_required(*MEMBERS)
def confirm(reward_id: int):
    """The confirmation step: 用 N 积分兑换 X？余额将剩 M."""
    return _confirm_page(_load_reward(reward_id))


@bp.post("/store/rewards/<int:reward_id>")
@role_required(*MEMBERS)
def redeem(reward_id: int):
    """Redeem as `POST /rewards/<id>/redeem` does, once per form token (a double tap: one).

    As there, any member may try: a reward taken off the shelf meanwhile is refused (409)."""
    reward = access.load(Reward, reward_id)
    token = request.form.get("form_token")
    data, form = parse(RedeemSchema(), keep=["quantity"])
    if data is None:
        return _confirm_page(reward, 422, form=form, token=token)
    done = claim_form(token)
    if done is not None:
        return see_other(url=done)
    try:
        redemption = service.redeem(reward.id, current_user.id, data["quantity"], current_user.id)
    except APIError as error:
        if error.status_code != 409:
            raise
        db.session.rollback()  # nothing of this submit stays, the form token included
        return _confirm_page(db.session.get(Reward, reward_id), 409, form=form, token=token,
                             refusal=message_for(error.slug, **error.params), slug=error.slug)
    url = f"/store/redemptions/{redemption.id}"
    complete_form(token, url)
    flash(gettext("兑换成功！请凭取货码到爱心超市领取。"), "success")
    return see_other(url=url)


# --- my redemptions -------------------------------------------------------------------------

@bp.get("/store/redemptions")
@role_required(*MEMBERS)
def redemptions():
    """My redemptions in the current community, newest first, 20 a page."""
    page_number = page_arg()
    statement = service.redemptions_query(
        {"mine": True, "community_id": g.community.id}, access.visible_community_ids(),
        current_user.id, access.organised_community_ids())
    page = paginate(db.session, statement, page_number, PER_PAGE)
    last = max(1, -(-page["total"] // PER_PAGE))
    return render("store/redemptions.html", items=page["items"], page=page_number, last=last,
                  labels=STATUS_LABELS)


def _my_redemption(redemption_id: int) -> Redemption:
    """Only its owner sees a redemption here (organisers use their pickup page); others 404."""
    redemption = access.load(Redemption, redemption_id)
    if redemption.user_id != current_user.id:
        raise NotFound()
    return redemption


def _redemption_page(redemption: Redemption, status: int = 200, refusal: str | None = None):
    due = redemption.created_at + timedelta(days=service.expiry_days(redemption.community_id))
    return render("store/redemption.html", status, redemption=redemption, due_at=due,
                  labels=STATUS_LABELS, refusal=refusal,
                  kind_label=gettext(REWARD_KINDS.get(redemption.reward_kind, "")))


@bp.get("/store/redemptions/<int:redemption_id>")
@role_required(*MEMBERS)
def redemption(redemption_id: int):
    """One redemption: the pickup code large, its QR full screen for the counter, cancel."""
    return _redemption_page(_my_redemption(redemption_id))


@bp.get("/store/redemptions/<int:redemption_id>/qr.png")
@role_required(*MEMBERS)
def pickup_qr(redemption_id: int):
    """The pickup QR: opens the organiser's pickup page with the code filled in."""
    found = _my_redemption(redemption_id)
    return _private_png(_public("/organiser/pickup", code=found.pickup_code))


@bp.post("/store/redemptions/<int:redemption_id>/cancel")
@role_required(*MEMBERS)
def cancel(redemption_id: int):
    """Cancel before pickup: the points come back once, the stock too."""
    found = _my_redemption(redemption_id)
    data, _form = parse(CancelSchema())
    try:
        service.cancel(found.id, current_user.id, reason=(data or {}).get("reason"))
    except APIError as error:
        if error.status_code != 409:
            raise
        db.session.rollback()
        return _redemption_page(db.session.get(Redemption, redemption_id), 409,
                                refusal=message_for(error.slug, **error.params))
    flash(gettext("已取消兑换，{n} 积分已退回您的账户。").format(n=found.cost_total), "success")
    return see_other("shop.redemption", redemption_id=redemption_id)


# --- the member card ------------------------------------------------------------------------

@bp.get("/me/card")
@role_required(*MEMBERS)
def card():
    """My member card: the member code as a full-screen QR for the counter, name and balance."""
    member = service.member_card(current_user.id)
    balance = ledger.points_summary(g.community.id, current_user.id)["balance"]
    return render("store/card.html", card=member, balance=balance)


@bp.get("/me/card/qr.png")
@role_required(*MEMBERS)
def card_qr():
    """The member card QR: opens the organiser's counter page with the member code filled in."""
    return _private_png(_public("/organiser/counter",
                                member_code=service.member_card(current_user.id).code))


@bp.post("/me/card/rotate")
@role_required(*MEMBERS)
def rotate_card():
    """换一张: a new member code; the old card (or a photo of it) stops working."""
    service.rotate_member_card(current_user.id)
    flash(gettext("已换成新的会员码，旧的会员码不能再使用。"), "success")
    return see_other("shop.card")
