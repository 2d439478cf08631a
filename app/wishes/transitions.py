"""The micro-wish lifecycle as data: (state, action) → (next state, who may do it).

Who is a relation of the actor to the wish, not a bare role:
- owner:     the resident who posted it (for themselves)
- proxy:     an organiser of its community, acting for the resident (recorded as by proxy)
- organiser: an organiser of its community (or a platform admin)
- volunteer: a volunteer of its community
- claimer:   the volunteer who holds it now
- system:    `flask wishes tick` (deadlines)

Every endpoint goes through `check()`; nothing else compares statuses to decide what is allowed.
"""

from __future__ import annotations

from app.errors import register_messages
from app.i18n import N_
from app.statemachine import Lifecycle, Transition, t

PENDING, OPEN, CLAIMED, FULFILLED, CLOSED, REJECTED, CANCELLED = (
    "pending", "open", "claimed", "fulfilled", "closed", "rejected", "cancelled")
STATUSES = (PENDING, OPEN, CLAIMED, FULFILLED, CLOSED, REJECTED, CANCELLED)
STATUS_LABELS = {PENDING: "待审核", OPEN: "待认领", CLAIMED: "已认领", FULFILLED: "待确认",
                 CLOSED: "已办结", REJECTED: "未通过", CANCELLED: "已撤回"}


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PENDING, "approve"): t(OPEN, "organiser"),
    (PENDING, "reject"): t(REJECTED, "organiser"),
    (OPEN, "reject"): t(REJECTED, "organiser"),
    (PENDING, "cancel"): t(CANCELLED, "owner", "proxy"),
    (OPEN, "cancel"): t(CANCELLED, "owner", "proxy"),
    (OPEN, "claim"): t(CLAIMED, "volunteer"),
    (OPEN, "assign"): t(CLAIMED, "organiser"),
    (CLAIMED, "release"): t(OPEN, "claimer", "organiser"),
    (CLAIMED, "extend"): t(CLAIMED, "claimer"),
    (CLAIMED, "fulfil"): t(FULFILLED, "claimer"),
    (FULFILLED, "confirm"): t(CLOSED, "owner", "proxy"),
    (FULFILLED, "dispute"): t(CLAIMED, "owner", "proxy"),
    (FULFILLED, "auto_confirm"): t(CLOSED, "system"),
    (CLAIMED, "lapse"): t(OPEN, "system"),
    (OPEN, "escalate"): t(OPEN, "system"),
}

register_messages({
    "invalid_transition": N_("该心愿当前状态为“{state_label}”，不能执行“{action}”。"),
    "action_not_allowed": N_("您不能对该心愿执行“{action}”。"),
})


LIFECYCLE = Lifecycle(TRANSITIONS, STATUS_LABELS, "invalid_transition", "action_not_allowed")
check = LIFECYCLE.check  # every action goes through it
ACTIONS = LIFECYCLE.actions


def by_proxy(transition: Transition, relations: set[str]) -> bool:
    """True when only the organiser's proxy relation allowed it (the owner did not act)."""
    return "proxy" in transition.who and "owner" not in relations and "proxy" in relations
