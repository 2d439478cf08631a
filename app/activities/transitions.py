"""The activity lifecycle as data: (state, action) → (next state, who may do it).

Who is a relation of the actor to the activity, not a bare role:
- organiser: an organiser of its community (or a platform admin)
- volunteer: a volunteer (or organiser: organisers may volunteer too) of its community

Time rules ride on top of the table (checked in app/activities/service.py): `edit`, `cancel`,
`signup` and `cancel_signup` only before the start; `complete` only after the start; `checkin`
from 30 minutes before the start until the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.activities.models import CANCELLED, COMPLETED, PUBLISHED
from app.errors import Conflict, Forbidden, register_messages
from app.i18n import N_

STATUS_LABELS = {PUBLISHED: N_("报名中"), CANCELLED: N_("已取消"), COMPLETED: N_("已结束")}
ACTION_LABELS = {"edit": N_("修改"), "cancel": N_("取消活动"), "complete": N_("结束并发放积分"),
                 "signup": N_("报名"), "cancel_signup": N_("取消报名"), "checkin": N_("签到"),
                 "mark_present": N_("登记到场")}


@dataclass(frozen=True)
class Transition:
    to: str
    who: frozenset[str]


def _t(to: str, *who: str) -> Transition:
    return Transition(to, frozenset(who))


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PUBLISHED, "edit"): _t(PUBLISHED, "organiser"),
    (PUBLISHED, "cancel"): _t(CANCELLED, "organiser"),
    (PUBLISHED, "complete"): _t(COMPLETED, "organiser"),
    (PUBLISHED, "signup"): _t(PUBLISHED, "volunteer"),
    (PUBLISHED, "cancel_signup"): _t(PUBLISHED, "volunteer"),
    (PUBLISHED, "checkin"): _t(PUBLISHED, "volunteer"),
    (PUBLISHED, "mark_present"): _t(PUBLISHED, "organiser"),
}
ACTIONS = sorted({action for _state, action in TRANSITIONS})

register_messages({
    "activity_invalid_transition": N_("该活动{state_label}，不能再{action_label}。"),
    "activity_action_not_allowed": N_("您不能对该活动执行“{action_label}”。"),
})


def check(status: str, action: str, relations: set[str]) -> Transition:
    """Return the transition for `action` from `status` by an actor with `relations`.

    403 when the actor could never take this action, 409 `activity_invalid_transition`
    (naming the current state) when the action is not possible in this state.
    """
    from app.i18n import gettext

    label = gettext(ACTION_LABELS[action])
    could_ever = any(a == action and t.who & relations for (_s, a), t in TRANSITIONS.items())
    if not could_ever:
        raise Forbidden("activity_action_not_allowed", action=action, action_label=label)
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        raise Conflict("activity_invalid_transition", state=status,
                       state_label=gettext(STATUS_LABELS[status]), action=action,
                       action_label=label, errors={"status": [status]})
    if not transition.who & relations:
        raise Forbidden("activity_action_not_allowed", action=action, action_label=label)
    return transition
