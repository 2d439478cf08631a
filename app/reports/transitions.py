"""The report lifecycle as data: (state, action) → (next state, who may do it). 发现—分办—处置—反馈.

Who is a relation of the actor to the report:
- organiser: an organiser of its community (or a platform admin)
- reporter:  the person who filed it (takes no action after filing; listed for completeness)

Every action goes through `check()`; nothing else compares statuses to decide what is allowed.
"""

from __future__ import annotations

from app.errors import register_messages
from app.i18n import N_
from app.statemachine import Lifecycle, Transition, t

PENDING, ACCEPTED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE = (
    "pending", "accepted", "in_progress", "resolved", "rejected", "duplicate")
STATUSES = (PENDING, ACCEPTED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE)
STATUS_LABELS = {PENDING: N_("待受理"), ACCEPTED: N_("已受理"), IN_PROGRESS: N_("处置中"),
                 RESOLVED: N_("已办结"), REJECTED: N_("未采纳"), DUPLICATE: N_("重复上报")}
ACTION_LABELS = {"file": N_("上报"), "accept": N_("受理"), "reject": N_("不予采纳"),
                 "duplicate": N_("标记重复"), "assign": N_("分办"), "resolve": N_("办结反馈")}


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PENDING, "accept"): t(ACCEPTED, "organiser"),
    (PENDING, "reject"): t(REJECTED, "organiser"),
    (PENDING, "duplicate"): t(DUPLICATE, "organiser"),
    (ACCEPTED, "assign"): t(IN_PROGRESS, "organiser"),
    (IN_PROGRESS, "resolve"): t(RESOLVED, "organiser"),
}

register_messages({
    "report_invalid_transition": N_("该上报当前状态为“{state_label}”，不能执行“{action_label}”。"),
    "report_action_not_allowed": N_("您不能对该上报执行“{action_label}”。"),
})


LIFECYCLE = Lifecycle(TRANSITIONS, STATUS_LABELS, "report_invalid_transition",
                      "report_action_not_allowed", action_labels=ACTION_LABELS)
check = LIFECYCLE.check  # every action goes through it
ACTIONS = LIFECYCLE.actions
