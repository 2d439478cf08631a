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

from dataclasses import dataclass

from app.errors import Conflict, Forbidden, register_messages
from app.i18n import N_

PENDING, OPEN, CLAIMED, FULFILLED, CLOSED, REJECTED, CANCELLED = (
    "pending", "open", "claimed", "fulfilled", "closed", "rejected", "cancelled")
STATUSES = (PENDING, OPEN, CLAIMED, FULFILLED, CLOSED, REJECTED, CANCELLED)
STATUS_LABELS = {PENDING: "待审核", OPEN: "待认领", CLAIMED: "已认领", FULFILLED: "待确认",
                 CLOSED: "已办结", REJECTED: "未通过", CANCELLED: "已撤回"}


@dataclass(frozen=True)
class Transition:
    to: str
    who: frozenset[str]


def _t(to: str, *who: str) -> Transition:
    return Transition(to, frozenset(who))


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PENDING, "approve"): _t(OPEN, "organiser"),
    (PENDING, "reject"): _t(REJECTED, "organiser"),
    (OPEN, "reject"): _t(REJECTED, "organiser"),
    (PENDING, "cancel"): _t(CANCELLED, "owner", "proxy"),
    (OPEN, "cancel"): _t(CANCELLED, "owner", "proxy"),
    (OPEN, "claim"): _t(CLAIMED, "volunteer"),
    (OPEN, "assign"): _t(CLAIMED, "organiser"),
    (CLAIMED, "release"): _t(OPEN, "claimer", "organiser"),
    (CLAIMED, "extend"): _t(CLAIMED, "claimer"),
    (CLAIMED, "fulfil"): _t(FULFILLED, "claimer"),
    (FULFILLED, "confirm"): _t(CLOSED, "owner", "proxy"),
    (FULFILLED, "dispute"): _t(CLAIMED, "owner", "proxy"),
    (FULFILLED, "auto_confirm"): _t(CLOSED, "system"),
    (CLAIMED, "lapse"): _t(OPEN, "system"),
    (OPEN, "escalate"): _t(OPEN, "system"),
}
ACTIONS = sorted({action for _state, action in TRANSITIONS})

register_messages({
    "invalid_transition": N_("该心愿当前状态为“{state_label}”，不能执行“{action}”。"),
    "action_not_allowed": N_("您不能对该心愿执行“{action}”。"),
})


def check(status: str, action: str, relations: set[str]) -> Transition:
    """Return the transition for `action` from `status` by an actor with `relations`.

    Refuses with 403 when the actor could never take this action on this wish, and with 409
    `invalid_transition` (naming the current state) when the action is not possible now.
    """
    could_ever = any(a == action and t.who & relations for (_s, a), t in TRANSITIONS.items())
    if not could_ever:
        raise Forbidden("action_not_allowed", action=action)
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        raise Conflict("invalid_transition", state=status, state_label=STATUS_LABELS[status],
                       action=action, errors={"status": [status]})
    if not transition.who & relations:
        raise Forbidden("action_not_allowed", action=action)
    return transition


def by_proxy(transition: Transition, relations: set[str]) -> bool:
    """True when only the organiser's proxy relation allowed it (the owner did not act)."""
    return "proxy" in transition.who and "owner" not in relations and "proxy" in relations
