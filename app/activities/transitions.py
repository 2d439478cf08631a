"""The activity lifecycle as data: (state, action) → (next state, who may do it).

Who is a relation of the actor to the activity, not a bare role:
- organiser: an organiser of its community (or a platform admin)
- volunteer: a volunteer (or organiser: organisers may volunteer too) of its community

Time rules ride on top of the table (checked in app/activities/service.py): `edit`, `cancel`,
`signup` and `cancel_signup` only before the start; `complete` only after the start; `checkin`
from 30 minutes before the start until the end.
"""

from __future__ import annotations

from app.activities.models import CANCELLED, COMPLETED, PUBLISHED
from app.errors import register_messages
from app.i18n import N_
from app.statemachine import Lifecycle, Transition, t

STATUS_LABELS = {PUBLISHED: N_("报名中"), CANCELLED: N_("已取消"), COMPLETED: N_("已结束")}
ACTION_LABELS = {"edit": N_("修改"), "cancel": N_("取消活动"), "complete": N_("结束并发放积分"),
                 "signup": N_("报名"), "cancel_signup": N_("取消报名"), "checkin": N_("签到"),
                 "mark_present": N_("登记到场")}


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PUBLISHED, "edit"): t(PUBLISHED, "organiser"),
    (PUBLISHED, "cancel"): t(CANCELLED, "organiser"),
    (PUBLISHED, "complete"): t(COMPLETED, "organiser"),
    (PUBLISHED, "signup"): t(PUBLISHED, "volunteer"),
    (PUBLISHED, "cancel_signup"): t(PUBLISHED, "volunteer"),
    (PUBLISHED, "checkin"): t(PUBLISHED, "volunteer"),
    (PUBLISHED, "mark_present"): t(PUBLISHED, "organiser"),
}

register_messages({
    "activity_invalid_transition": N_("该活动{state_label}，不能再{action_label}。"),
    "activity_action_not_allowed": N_("您不能对该活动执行“{action_label}”。"),
})


LIFECYCLE = Lifecycle(TRANSITIONS, STATUS_LABELS, "activity_invalid_transition",
                      "activity_action_not_allowed", action_labels=ACTION_LABELS)
check = LIFECYCLE.check  # every action goes through it
ACTIONS = LIFECYCLE.actions
