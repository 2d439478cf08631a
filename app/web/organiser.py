"""Pages: the organiser's (社区工作人员) — review, dispatch, posting for a resident, boards,
pickup, the exchange-day counter, members and their points passbooks.

Every page is for organisers of the current community (the switcher's): a volunteer or a
resident gets a 403 page, an object of another community a 404 page. Each view loads its
object with the API's access check, parses the form with the API's schema and calls the
service function the API route calls.
"""

from __future__ import annotations

import re

import marshmallow as ma
import sqlalchemy as sa
from flask import Response, flash, g, request
from flask_jwt_extended import current_user

from app import qr
from app.auth import service as auth
from app.auth.models import User
from app.communities import access
from app.communities import service as communities
from app.communities.models import ROLE_LABELS, Membership, Role, VolunteerProfile
from app.db import paginate, utcnow
from app.errors import APIError, NotFound, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import service as ledger
from app.store import service as store
from app.store.models import AWAITING_PICKUP, FULFILLED, REWARD_KINDS, MemberCard, Redemption, Reward
from app.store.schemas import PickupByCodeSchema, RedeemSchema
from app.web import local_time
from app.web.causes import describe
from app.web.forms import Form, claim_form, complete_form, new_form_token, number, parse, typed
from app.web.pages import page_arg, page_blueprint, render, role_required, see_other
from app.wishes import service as wishes
from app.wishes import transitions as lifecycle
from app.wishes.models import CATEGORIES, Board, Wish
from app.wishes.schemas import ApproveSchema, AssignSchema, ReasonSchema, WishCreateSchema

bp = page_blueprint("organiser", __name__, url_prefix="/organiser")

PER_PAGE = 20
REVIEW_PER_PAGE = 10  # each pending wish carries two forms: ten keep the page under 60 KB
PASSBOOK_PER_PAGE = 100  # a printed passbook page; the balance carries over to the next
MAX_COUNTER_REWARDS = 60
LEVELS = (1, 2, 3, 4, 5)
ORGANISER = Role.ORGANISER


# --- shared pieces --------------------------------------------------------------------------

class NestedForm:
    """An API schema with a nested field, fed from a flat HTML form: prefixed inputs fill the
    nested field, and its errors come back under the inputs' names."""

    def __init__(self, schema: ma.Schema, nested: dict[str, dict[str, str]]):
        self.schema, self.nested = schema, nested
        self.fields = schema.fields  # what `parse` reads to turn typed digits into numbers

    def load(self, given: dict) -> dict:
        data: dict = {outer: {} for outer in self.nested}
        for name, value in given.items():
            outer = next((o for o, inner in self.nested.items() if name in inner), None)
            if outer is None:
                data[name] = value
            else:
                data[outer][self.nested[outer][name]] = value
        try:
            return self.schema.load(data)
        except ma.ValidationError as error:
            raise ma.ValidationError(self._flat(error.messages)) from None

    def _flat(self, messages) -> dict:
        if not isinstance(messages, dict):
            return {"_": messages}
        flat: dict = {}
        for name, texts in messages.items():
            if name in self.nested and isinstance(texts, dict):
                back = {inner: typed for typed, inner in self.nested[name].items()}
                for inner, inner_texts in texts.items():
                    flat[back.get(inner, name)] = inner_texts
            else:
                flat[name] = texts
        return flat


def _say_instead(form: Form, field: str, message: str) -> None:
    """Replace the schema's generic "required" with what to do, when nothing was typed."""
    if form.errors.get(field) and not str(form.values.get(field, "")).strip():
        form.errors[field] = [message]


def _refused(form: Form, error: APIError, field: str) -> None:
    """A service's refusal shown beside the form field it concerns."""
    if error.status_code == 422 and error.errors:
        for name, texts in error.errors.items():
            for text in texts if isinstance(texts, list) else [texts]:
                form.error(name, str(text))
    else:
        form.error(field, message_for(error.slug, **error.params))


def _cid() -> int:
    return g.community.id


def _ours(model, object_id: int):
    """An object of the current community, loaded with the organiser check; else 404."""
    found = access.load(model, object_id, ORGANISER)
    if found.community_id != _cid():
        raise NotFound()
    return found


def _member(user_id: int) -> Membership:
    member = Membership.find(_cid(), user_id) if 0 < user_id <= 2**31 - 1 else None
    if member is None:
        raise NotFound()
    return member


# --- 1. the review queue --------------------------------------------------------------------

REVIEW_LABELS = {"level": N_("定级"), "reason": N_("不通过的原因")}


@bp.get("/review")
@role_required(ORGANISER)
def review():
    return _review_queue()


def _review_queue(status: int = 200, *, forms: dict | None = None, notice: str | None = None):
    query = wishes.visible_query(current_user, {"community_id": _cid(), "status": lifecycle.PENDING})
    page = paginate(db.session, query.order_by(None).order_by(Wish.id), page_arg(), REVIEW_PER_PAGE)
    forms = forms or {}
    # One summary at the top, linking to the fields of the wish whose form had an error.
    summary = Form(errors={f"{wid}-{name}": texts for wid, form in forms.items()
                           for name, texts in form.errors.items()})
    return render("organiser/review.html", status, page=page,
                  wishes=wishes.present_all(page["items"], current_user),
                  points={level: ledger.points_for(_cid(), "wish", level) for level in LEVELS},
                  forms=forms, summary=summary, notice=notice,
                  summary_labels={key: gettext(REVIEW_LABELS[key.split("-", 1)[1]])
                                  for key in summary.errors if key.split("-", 1)[1] in REVIEW_LABELS})


@bp.post("/review/<int:wid>")
@role_required(ORGANISER)
def decide(wid: int):
    """Approve a pending wish with a level, or reject it with a reason."""
    _ours(Wish, wid)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        decision = "approve" if "level" in request.form else "reject"
    if decision == "approve":
        data, form = parse(ApproveSchema(), keep=["level"])
        _say_instead(form, "level", gettext("请先选一个等级（1–5 级），再点“通过”。"))
    else:
        data, form = parse(ReasonSchema(), keep=["reason"])
        _say_instead(form, "reason", gettext("请写明不通过的原因（居民会看到），再点“不通过”。"))
    form.values["decision"] = decision
    if data is None:
        return _review_queue(422, forms={wid: form})
    try:
        # The queue showed it pending: refused if a colleague has decided on it meanwhile.
        title = wishes.act(wid, decision, current_user, expected_status=lifecycle.PENDING, **data).title
    except APIError as error:
        if error.status_code != 409:
            raise
        return _review_queue(409, notice=message_for(error.slug, **error.params))
    if decision == "approve":
        flash(gettext("已通过“{title}”：{level} 级，完成后可得 {points} 分；心愿已开放给志愿者认领。").format(
            title=title, level=data["level"], points=ledger.points_for(_cid(), "wish", data["level"])),
            "success")
    else:
        flash(gettext("“{title}”未通过，居民会看到您写的原因。").format(title=title), "success")
    return see_other("organiser.review", page=page_arg() if page_arg() > 1 else None)


# --- 2. the dispatch queue ------------------------------------------------------------------

@bp.get("/dispatch")
@role_required(ORGANISER)
def dispatch():
    query = wishes.visible_query(current_user, {"community_id": _cid(), "escalated": True})
    page = paginate(db.session, query.order_by(None).order_by(Wish.opened_at, Wish.id), page_arg(),
                    PER_PAGE)
    return render("organiser/dispatch.html", page=page,
                  wishes=wishes.present_all(page["items"], current_user))


@bp.get("/dispatch/<int:wid>")
@role_required(ORGANISER)
def assign_form(wid: int):
    return _assign_page(_ours(Wish, wid))


def _assign_page(wish: Wish, status: int = 200, form: Form | None = None):
    return render("organiser/assign.html", status, wish=wishes.present(wish, current_user),
                  waiting=wish.status == lifecycle.OPEN, volunteers=_volunteers(wish), form=form)


def _volunteers(wish: Wish) -> list[dict]:
    """The community's volunteers for a select: those whose skills fit the wish first, then
    those holding fewest wishes now."""
    members = db.session.scalars(communities.members_query(g.community, Role.VOLUNTEER)).all()
    ids = [m.user_id for m in members]
    profiles = {p.user_id: p for p in db.session.scalars(
        sa.select(VolunteerProfile).where(VolunteerProfile.user_id.in_(ids)))} if ids else {}
    held = dict(db.session.execute(
        sa.select(Wish.claimer_id, sa.func.count()).where(
            Wish.claimer_id.in_(ids), Wish.status == lifecycle.CLAIMED)
        .group_by(Wish.claimer_id)).all()) if ids else {}
    limit = wishes.settings_for(wish.community_id)["max_active_claims"]
    fitting = set(CATEGORIES[wish.category]["skills"])
    rows = []
    for member in members:
        skills = list(profiles[member.user_id].skills) if member.user_id in profiles else []
        rows.append({"id": member.user_id, "name": member.user.display_name,
                     "skills": [gettext(communities.SKILLS.get(s, s)) for s in skills],
                     "fits": bool(fitting & set(skills)), "held": held.get(member.user_id, 0),
                     "full": held.get(member.user_id, 0) >= limit})
    rows.sort(key=lambda r: (not r["fits"], r["full"], r["held"], r["id"]))
    return rows


@bp.post("/dispatch/<int:wid>")
@role_required(ORGANISER)
def assign(wid: int):
    wish = _ours(Wish, wid)
    data, form = parse(AssignSchema(), keep=["volunteer_id"])
    _say_instead(form, "volunteer_id", gettext("请先选择一位志愿者，再点“派单”。"))
    if data is None:
        return _assign_page(wish, 422, form)
    title = wish.title
    try:
        wishes.act(wid, "assign", current_user, **data)
    except APIError as error:
        if error.slug == "invalid_transition":
            form.error("volunteer_id", gettext(
                "这个心愿现在是“{state}”，已不在派单队列，不用再派单。").format(
                state=gettext(error.params.get("state_label", ""))))
        else:
            _refused(form, error, "volunteer_id")
        db.session.rollback()
        return _assign_page(_ours(Wish, wid), 409 if error.status_code != 422 else 422, form)
    volunteer = db.session.get(User, data["volunteer_id"])
    flash(gettext("已把“{title}”派给 {name}，TA 会在“我的心愿”里看到。").format(
        title=title, name=volunteer.display_name), "success")
    return see_other("organiser.dispatch")


# --- 3. posting for a resident without a phone ----------------------------------------------

PROXY_FIELDS = ["proxy_name", "proxy_phone", "title", "description", "category", "address"]
PROXY_NESTED = {"on_behalf_of": {"proxy_name": "name", "proxy_phone": "phone"}}


@bp.get("/proxy")
@role_required(ORGANISER)
def proxy():
    return _proxy_page(form_token=new_form_token())


def _proxy_page(status: int = 200, *, form: Form | None = None, form_token: str):
    boards = db.session.scalars(wishes.boards_query(_cid())).all()
    waiting = wishes.visible_query(current_user, {"community_id": _cid(),
                                                  "status": lifecycle.FULFILLED})
    waiting = paginate(db.session, waiting.where(Wish.owner_id.is_(None)), page_arg(), PER_PAGE)
    return render("organiser/proxy.html", status, form=form, form_token=form_token,
                  boards=[(b.id, b.name + ("" if b.enabled else gettext("（已停用）")))
                          for b in boards],
                  categories=[(code, gettext(info["label"])) for code, info in CATEGORIES.items()],
                  waiting=waiting,
                  waiting_wishes=wishes.present_all(waiting["items"], current_user))


@bp.post("/proxy")
@role_required(ORGANISER)
def post_for_resident():
    """Post a wish on behalf of a resident (代发): recorded as proxy, contact from the resident."""
    token = request.form.get("form_token")
    done = claim_form(token)
    if done is not None:
        return see_other(url=done)
    data, form = parse(NestedForm(WishCreateSchema(), PROXY_NESTED), keep=PROXY_FIELDS)
    _say_instead(form, "proxy_name", gettext("请填写居民的称呼，如：周大爷。"))
    _say_instead(form, "proxy_phone", gettext("请填写居民或其家人的手机号，志愿者要联系。"))
    _say_instead(form, "title", gettext("请用一句话写下心愿，如：厨房水龙头漏水。"))
    _say_instead(form, "category", gettext("请选择心愿的类别。"))
    board = _chosen_board(form)
    if data is None or board is None:
        return _proxy_page(422, form=form, form_token=token or new_form_token())
    try:
        wish = wishes.post_wish(board, current_user, data)
    except APIError as error:
        _refused(form, error, "board_id")
        return _proxy_page(409 if error.status_code == 409 else 422, form=form,
                           form_token=token or new_form_token())
    url = f"/wishes/{wish.id}"
    complete_form(token, url)
    flash(gettext("已为{name}登记心愿“{title}”（社区代发），审核后志愿者就能认领。").format(
        name=wish.proxy_name, title=wish.title), "success")
    return see_other(url=url)


def _chosen_board(form: Form) -> Board | None:
    value = number(request.form.get("board_id", ""))
    form.values["board_id"] = request.form.get("board_id", "")
    board = db.session.get(Board, value) if isinstance(value, int) and 0 < value < 2**31 else None
    if board is None or board.community_id != _cid():
        form.error("board_id", gettext("请选择要发布到哪个心愿墙。"))
        return None
    return board


# --- 4. boards and their posters ------------------------------------------------------------

@bp.get("/boards")
@role_required(ORGANISER)
def boards():
    page = paginate(db.session, wishes.boards_query(_cid()), page_arg(), PER_PAGE)
    return render("organiser/boards.html", page=page,
                  urls={b.id: wishes.public_url(b) for b in page["items"]})


@bp.get("/boards/<int:bid>/qr.png")
@role_required(ORGANISER)
def board_qr(bid: int):
    """A small QR of the board's public address, shown beside it."""
    response = Response(qr.png(wishes.public_url(_ours(Board, bid)), 256), mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- 5. handing over a redemption by its pickup code ----------------------------------------

@bp.get("/pickup")
@role_required(ORGANISER)
def pickup():
    """Type or scan a pickup code (`?code=` comes from the pickup QR) to see what it names."""
    code = request.args.get("code", "").strip()
    if not code:
        return render("organiser/pickup.html", lookup=None, redemption=None)
    lookup = Form(values={"code": code})
    redemption = _redemption_by_code(lookup, code)  # a search: "not found" is its answer (200)
    return render("organiser/pickup.html", lookup=lookup, redemption=redemption,
                  refusal=_not_pending(redemption) if redemption else None)


def _redemption_by_code(lookup: Form, code: str) -> Redemption | None:
    try:
        PickupByCodeSchema().load({"pickup_code": code})
        return store.find_by_code(_cid(), code)
    except (ma.ValidationError, NotFound):
        lookup.error("code", gettext("没有找到这个取货码。请核对志愿者手机上“我的兑换”里的取货码"
                                     "（10 位字母和数字），重新输入或扫描。"))
        return None


def _not_pending(redemption: Redemption) -> str | None:
    """Why a redemption cannot be handed over, and what to do, in words; None if it can."""
    if redemption.status == AWAITING_PICKUP:
        return None
    if redemption.status == FULFILLED:
        return gettext("这份兑换已经领取过了（{when}），请不要重复发放。如有疑问，请查看兑换记录。").format(
            when=local_time(redemption.fulfilled_at))
    return gettext("这份兑换的状态是“{state}”，积分已退还给志愿者，不能再领取。请志愿者重新兑换。").format(
        state=gettext(store.STATUS_LABELS[redemption.status]))


@bp.post("/pickup")
@role_required(ORGANISER)
def fulfil_pickup():
    """Hand over what the code names, as `fulfil_by_code` does in the API."""
    code = request.form.get("pickup_code", "").strip()
    lookup = Form(values={"code": code})
    if not code:
        lookup.error("code", gettext("请输入或扫描志愿者的取货码。"))
        return render("organiser/pickup.html", 422, lookup=lookup, redemption=None)
    redemption = _redemption_by_code(lookup, code)  # checked by the API's schema there
    if redemption is None:
        return render("organiser/pickup.html", 409, lookup=lookup, redemption=None)
    try:
        redemption = store.fulfil(redemption.id, code, current_user.id)
    except APIError as error:
        if error.status_code != 409:
            raise
        found = db.session.get(Redemption, redemption.id)
        refusal = _not_pending(found) if error.slug == "redemption_not_pending" else None
        return render("organiser/pickup.html", 409, lookup=lookup, redemption=found,
                      refusal=refusal or message_for(error.slug, **error.params))
    flash(gettext("已核销：{reward} × {quantity}，请交给 {name}。").format(
        reward=redemption.reward_name, quantity=redemption.quantity,
        name=redemption.user.display_name), "success")
    return see_other("organiser.pickup")


# --- 6. the exchange-day counter (爱心超市 每周兑换日) ----------------------------------------

@bp.get("/counter")
@role_required(ORGANISER)
def counter():
    code = request.args.get("member_code", "").strip()
    if not code:
        return render("organiser/counter.html", form=None, holder=None)
    form = Form(values={"member_code": code})
    holder = _card_holder(form, code)
    if holder is None:  # a search: "not found" is its answer (200)
        return render("organiser/counter.html", form=form, holder=None)
    return _counter_page(holder, code, form=form, form_token=new_form_token())


def _card_holder(form: Form, code: str) -> User | None:
    """The member of this community whose member card shows `code`."""
    card = db.session.scalar(sa.select(MemberCard).where(MemberCard.code == code[:64]))
    if card is None or Membership.find(_cid(), card.user_id) is None:
        form.error("member_code", gettext(
            "没有找到这张会员卡，或持卡人不是本社区成员。请志愿者在手机上打开“会员卡”重新出示，再扫描或输入。"))
        return None
    return db.session.get(User, card.user_id)


def _counter_page(holder: User, code: str, status: int = 200, *, form: Form | None = None,
                  form_token: str, notice: str | None = None):
    rewards = db.session.scalars(store.rewards_query(_cid(), only_active=True)
                                 .limit(MAX_COUNTER_REWARDS)).all()
    return render("organiser/counter.html", status, form=form, holder=holder, member_code=code,
                  summary=ledger.points_summary(_cid(), holder.id), rewards=rewards,
                  kinds=REWARD_KINDS, form_token=form_token, notice=notice)


@bp.post("/counter")
@role_required(ORGANISER)
def redeem_at_counter():
    """Redeem the picked rewards for the card holder, handed over at once; then the receipt."""
    token = request.form.get("form_token")
    done = claim_form(token)
    if done is not None:
        return see_other(url=done)
    code = request.form.get("member_code", "").strip()
    form = Form(values=typed())
    holder = _card_holder(form, code)
    if holder is None:
        return render("organiser/counter.html", 409, form=form, holder=None)
    token = token or new_form_token()
    picked = _picked(form, holder, code)
    if not form.ok or not picked:
        if form.ok:
            form.error("rewards", gettext("请至少给一件奖品填上数量（1 或以上），再点“兑换”。"))
        return _counter_page(holder, code, 422, form=form, form_token=token)
    made = []
    try:
        for reward, quantity in picked:
            made.append(store.redeem_at_counter(reward, holder.id, code, quantity, current_user.id))
    except APIError as error:
        db.session.rollback()  # nothing of this submit is kept: show the balance as it is
        return _counter_page(db.session.get(User, holder.id), code, 409, form=form, form_token=token,
                             notice=_counter_refusal(error, reward))
    url = "/organiser/counter/receipts/" + ",".join(str(r.id) for r in made)
    complete_form(token, url)
    flash(gettext("兑换完成，物品请当场交给 {name}。").format(name=holder.display_name), "success")
    return see_other(url=url)


def _picked(form: Form, holder: User, code: str) -> list[tuple[Reward, int]]:
    """(reward, quantity) for every quantity box filled in, each checked by the API's schema."""
    picked = []
    for name, value in request.form.items():
        found = re.fullmatch(r"qty-([0-9]{1,10})", name)
        if not found or not value.strip() or number(value) == 0:
            continue
        reward = db.session.get(Reward, int(found.group(1)))
        if reward is None or reward.community_id != _cid():
            continue
        try:
            data = RedeemSchema().load({"quantity": number(value), "for_user_id": holder.id,
                                        "member_code": code})
        except ma.ValidationError:
            form.error(name, gettext("数量请填 0 到 10 之间的整数。"))
            continue
        picked.append((reward, data["quantity"]))
    return picked


def _counter_refusal(error: APIError, reward: Reward) -> str:
    what = gettext("“{name}”：").format(name=reward.name)
    if error.slug == "insufficient_points":
        return what + gettext("积分不够。请减少数量或换一件便宜些的奖品，再点“兑换”。")
    return what + message_for(error.slug, **error.params) + gettext(
        " 这次一件都没有兑换，请修改后再点“兑换”。")


@bp.get("/counter/receipts/<ids>")
@role_required(ORGANISER)
def receipt(ids: str):
    """The printable receipt of one counter redemption (several rewards at once)."""
    if not re.fullmatch(r"[0-9]{1,10}(,[0-9]{1,10}){0,59}", ids):
        raise NotFound()
    made = [_ours(Redemption, int(i)) for i in dict.fromkeys(ids.split(","))]
    if any(not r.at_counter or r.user_id != made[0].user_id for r in made):
        raise NotFound()
    holder = made[0].user
    return render("organiser/receipt.html", redemptions=made, holder=holder,
                  total=sum(r.cost_total for r in made),
                  balance_after=store.balance_after(made[-1]),
                  organiser=db.session.get(User, made[0].created_by_id))


# --- 7. members and password reset codes ----------------------------------------------------

ROLE_FILTERS = (("", N_("全部")), (Role.VOLUNTEER.value, N_("志愿者")), (Role.RESIDENT.value, N_("居民")),
                (Role.ORGANISER.value, N_("社区工作人员")))


@bp.get("/members")
@role_required(ORGANISER)
def members():
    role = request.args.get("role", "")
    role = role if role in {r.value for r in Role} else ""
    query = communities.members_query(g.community, Role(role) if role else None)
    page = paginate(db.session, query, page_arg(), PER_PAGE)
    return render("organiser/members.html", page=page, role=role, filters=ROLE_FILTERS,
                  role_labels=ROLE_LABELS)


@bp.post("/members/<int:uid>/reset-code")
@role_required(ORGANISER)
def reset_code(uid: int):
    """Issue a one-time password reset code and show it, once, in large type."""
    member = _member(uid)
    code, reset = auth.issue_password_reset(_cid(), member.user_id, current_user)
    return render("organiser/reset_code.html", member=member, code=code, reset=reset)


# --- 8. the points passbook (积分存折) ------------------------------------------------------

@bp.get("/passbook/<int:user_id>")
@role_required(ORGANISER)
def passbook(user_id: int):
    """Every entry of a member's account here, oldest first, for those who keep paper."""
    ledger.require_member_account_owner(_cid(), user_id)
    holder = db.session.get(User, user_id)
    account = ledger.find_user_account(_cid(), user_id)
    total = account.entry_count if account else 0
    pages = max(1, -(-total // PASSBOOK_PER_PAGE))
    number = min(page_arg(), pages)
    entries = ledger.ledger_page(_cid(), user_id, after=None, page=number,
                                 per_page=PASSBOOK_PER_PAGE, oldest_first=True)["items"]
    carried = (entries[0]["balance_after"] - entries[0]["amount"]) if entries else 0
    return render("organiser/passbook.html", holder=holder,
                  member=Membership.find(_cid(), user_id), role_labels=ROLE_LABELS,
                  summary=ledger.points_summary(_cid(), user_id),
                  rows=list(zip(entries, describe(entries, current_user), strict=True)),
                  carried=carried, number=number, pages=pages, total=total,
                  per_page=PASSBOOK_PER_PAGE, now=utcnow(),
                  page_in=sum(e["amount"] for e in entries if e["amount"] > 0),
                  page_out=-sum(e["amount"] for e in entries if e["amount"] < 0))
