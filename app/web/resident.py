"""The resident's pages and the one page of a wish that every role shares.

`/me/wishes` lists the signed-in person's own wishes; `/wishes/<id>` shows a wish to whoever may
see it (as `GET /api/v1/wishes/<id>` does: the same access check, `present()` masking, timeline
and reveal log) with the actions the transition table lets this viewer take now, each a form
posting to `/wishes/<id>/<action>`, parsed by the API's own schema and done by `service.act`.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, request, url_for
from flask_jwt_extended import current_user

from app.communities import access
from app.communities import service as communities
from app.communities.models import Community, Role, VolunteerProfile
from app.db import paginate
from app.errors import APIError, NotFound, message_for
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger import service as ledger
from app.web import labels, session
from app.web.forms import FORM_TOKEN, Form, claim_form, complete_form, new_form_token, parse
from app.web.pages import NEXT_STEPS, TITLES, login_required, page_arg, page_blueprint, render, see_other
from app.wishes import service
from app.wishes import transitions as lifecycle
from app.wishes.models import CATEGORIES, Wish
from app.wishes.schemas import (
    ApproveSchema,
    AssignSchema,
    ConfirmSchema,
    EmptySchema,
    FulfilSchema,
    OptionalReasonSchema,
    ReasonSchema,
)

bp = page_blueprint("resident", __name__)

PER_PAGE = 20
MAX_VOLUNTEERS = 300  # the assign picker; a page stays small

# The schema of each action's form: the same as the API's (app/wishes/routes.py).
SCHEMAS = {
    "approve": ApproveSchema, "reject": ReasonSchema, "cancel": OptionalReasonSchema,
    "claim": EmptySchema, "assign": AssignSchema, "release": ReasonSchema,
    "extend": EmptySchema, "fulfil": FulfilSchema, "confirm": ConfirmSchema,
    "dispute": ReasonSchema,
}
# The order actions appear on the page: the step forward first, the way back last.
ORDER = ["confirm", "claim", "fulfil", "approve", "assign", "extend", "dispute", "release",
         "reject", "cancel"]
# What to do after a refusal, by its slug (else by its status).
NEXT_BY_SLUG = {
    "invalid_transition": N_("这个心愿的状态已经变了，请看下面的最新进度再决定下一步。"),
    "claim_limit_reached": N_("办好手上的心愿（标记已完成）或退回一个后，就可以再认领。"),
    "already_extended": N_("请在期限前办好；实在办不了，可以退回心愿，让别的志愿者来帮忙。"),
    "own_wish": N_("请让其他志愿者来认领，或请社区工作人员派单。"),
}


# --- 我的心愿 ----------------------------------------------------------------------------------

@bp.get("/me/wishes")
@login_required
def my_wishes():
    """The signed-in person's own wishes, newest first, 20 a page."""
    listing = paginate(db.session, service.visible_query(current_user, {"mine": True}),
                       page_arg(), PER_PAGE)
    wishes = [{"id": w.id, "title": w.title, "status": w.status,
               "status_label": labels.status_label(w.status), "board_name": w.board.name,
               "category": gettext(CATEGORIES[w.category]["label"]), "date": w.created_at}
              for w in listing["items"]]
    return render("resident/my_wishes.html", wishes=wishes, page=listing["page"],
                  pages=max(1, -(-listing["total"] // PER_PAGE)), total=listing["total"])


# --- one wish ------------------------------------------------------------------------------

@bp.get("/wishes/<int:wid>")
@login_required
def wish_page(wid: int):
    """One wish as this viewer may see it, its timeline in words and what they can do now."""
    return _show(access_wish(wid))


def access_wish(wid: int) -> Wish:
    # Any member of the wish's community may look (personal data masked); others get 404.
    return access.load(Wish, wid)


def available_actions(wish: Wish, user) -> list[str]:
    """The actions `user` may take on `wish` now, as the transition table says."""
    relation_set = service.relations(wish, user)
    found = {action for (state, action), transition in lifecycle.TRANSITIONS.items()
             if state == wish.status and transition.who & relation_set}
    if "owner" in relation_set:
        found.discard("claim")  # the service refuses a volunteer's own wish (own_wish)
    if wish.fulfil_extended:
        found.discard("extend")  # once only (already_extended)
    return [action for action in ORDER if action in found]


def _show(wish: Wish, status: int = 200, *, action: str | None = None, form: Form | None = None,
          refusal: dict | None = None):
    user = current_user
    body = service.present(wish, user)
    steps = service.timeline(wish, user)
    settings = service.settings_for(wish.community_id)
    actions = available_actions(wish, user)
    relation_set = service.relations(wish, user)
    if body["_reveal_to_claimer"]:  # the claimer is shown whom to help: a logged reveal
        service.log_reveal(wish.id, wish.community_id, user.id)
    context = {
        "wish": body, "actions": actions, "relations": relation_set,
        "steps": [{**s, "label": labels.step_label(s, settings["auto_confirm_days"]),
                   "who": labels.step_actor(s)} for s in steps],
        "category": gettext(CATEGORIES[body["category"]]["label"]),
        "status_label": labels.status_label(body["status"]),
        "settings": settings, "forms": {action: form} if action and form else {},
        "refusal": refusal, "form_tokens": _form_tokens(actions, action),
        "next": session.safe_next(request.form.get("next"), url_for(".wish_page", wid=wish.id)),
    }
    if "approve" in actions:
        context["levels"] = [(n, gettext("等级 {n} · {points} 分").format(
            n=n, points=ledger.points_for(wish.community_id, "wish", n))) for n in range(1, 6)]
    if "assign" in actions:
        context["volunteers"] = _volunteers(wish.community_id)
    return render("resident/wish.html", status, **context)


def _form_tokens(actions: list[str], again: str | None) -> dict[str, str]:
    """A one-time token per action form; the form shown again after an error keeps its own
    (its first use was rolled back with the rest of that submit)."""
    tokens = {a: new_form_token() for a in actions}
    if again in tokens and request.form.get(FORM_TOKEN):
        tokens[again] = request.form[FORM_TOKEN]
    return tokens


def _volunteers(community_id: int) -> list[tuple[int, str]]:
    """The assign picker: the community's volunteers with their skills, as the API lists members."""
    community = db.session.get(Community, community_id)
    members = db.session.scalars(communities.members_query(community, Role.VOLUNTEER)
                                 .limit(MAX_VOLUNTEERS)).all()
    profiles = {p.user_id: p for p in db.session.scalars(sa.select(VolunteerProfile).where(
        VolunteerProfile.user_id.in_([m.user_id for m in members])))} if members else {}
    options = []
    for member in members:
        profile = profiles.get(member.user_id)
        skills = "、".join(gettext(communities.SKILLS[s]) for s in (profile.skills if profile else [])
                          if s in communities.SKILLS)
        options.append((member.user_id, f"{member.user.display_name} · {skills}" if skills
                        else member.user.display_name))
    return options


# --- taking an action ---------------------------------------------------------------------

@bp.post("/wishes/<int:wid>/<action>")
@login_required
def wish_action(wid: int, action: str):
    """Take one action on a wish, exactly as `POST /api/v1/wishes/<id>/<action>` does."""
    if action not in SCHEMAS:
        raise NotFound()
    wish = access_wish(wid)
    form_token = request.form.get(FORM_TOKEN)
    done = claim_form(form_token)
    if done:  # a double tap: the first submit already did it
        return see_other(url=done)
    data, form = parse(SCHEMAS[action]())
    try:  # one who may not, or not now, hears that first (service.act asks again, locked)
        lifecycle.check(wish.status, action, service.relations(wish, current_user))
    except APIError as error:
        return _refused(wid, action, form, error)
    if data is None:
        return _again(wid, action, form, 422)
    try:
        wish = service.act(wid, action, current_user, **data)
    except APIError as error:
        return _refused(wid, action, form, error)
    if service.present(wish, current_user)["_reveal_to_claimer"]:
        service.record_reveal(wish.id, wish.community_id, current_user.id)  # e.g. after a claim
    target = session.safe_next(request.form.get("next"), url_for(".wish_page", wid=wid))
    complete_form(form_token, target)
    flash(gettext(labels.DONE[action]), "success")
    return see_other(url=target)


def _again(wid: int, action: str, form: Form, status: int, refusal: dict | None = None):
    """The wish page again, as it is now (nothing of this submit kept), with what was typed."""
    db.session.rollback()
    return _show(access_wish(wid), status, action=action, form=form, refusal=refusal)


def _refused(wid: int, action: str, form: Form, error: APIError):
    if error.status_code == 422 and error.errors:  # a rule on a field, e.g. not a volunteer
        for name, messages in error.errors.items():
            for message in messages:
                form.error(name, message)
        return _again(wid, action, form, 422)
    if error.status_code == 404:
        raise error
    params = {**error.params, "action": labels.action_label(action)}
    next_step = NEXT_BY_SLUG.get(error.slug) or NEXT_STEPS.get(error.status_code) or NEXT_STEPS[409]
    refusal = {"title": gettext(TITLES.get(error.status_code, TITLES[409])),
               "message": message_for(error.slug, **params), "next_step": gettext(next_step),
               "action": action,
               "typed": [(name, value) for name, value in form.values.items() if value.strip()]}
    return _again(wid, action, form, error.status_code, refusal)
