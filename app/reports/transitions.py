"""The report lifecycle as data: (state, action) → (next state, who may do it). 发现—分办—处置—反馈.

Who is a relation of the actor to the report:
- organiser: an organiser of its community (or a platform admin)
- reporter:  the person who filed it (takes no action after filing; listed for completeness)

Every action goes through `check()`; nothing else compares statuses to decide what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import Conflict, Forbidden, register_messages
from app.i18n import N_

PENDING, ACCEPTED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE = (
    "pending", "accepted", "in_progress", "resolved", "rejected", "duplicate")
STATUSES = (PENDING, ACCEPTED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE)
STATUS_LABELS = {PENDING: N_("待受理"), ACCEPTED: N_("已受理"), IN_PROGRESS: N_("处置中"),
                 RESOLVED: N_("已办结"), REJECTED: N_("未采纳"), DUPLICATE: N_("重复上报")}
ACTION_LABELS = {"file": N_("上报"), "accept": N_("受理"), "reject": N_("不予采纳"),
                 "duplicate": N_("标记重复"), "assign": N_("分办"), "resolve": N_("办结反馈")}


@dataclass(frozen=True)
class Transition:
    to: str
    who: frozenset[str]


def _t(to: str, *who: str) -> Transition:
    return Transition(to, frozenset(who))


TRANSITIONS: dict[tuple[str, str], Transition] = {
    (PENDING, "accept"): _t(ACCEPTED, "organiser"),
    (PENDING, "reject"): _t(REJECTED, "organiser"),
    (PENDING, "duplicate"): _t(DUPLICATE, "organiser"),
    (ACCEPTED, "assign"): _t(IN_PROGRESS, "organiser"),
    (IN_PROGRESS, "resolve"): _t(RESOLVED, "organiser"),
}
ACTIONS = sorted({action for _state, action in TRANSITIONS})

register_messages({
    "report_invalid_transition": N_("该上报当前状态为“{state_label}”，不能执行“{action_label}”。"),
    "report_action_not_allowed": N_("您不能对该上报执行“{action_label}”。"),
})


def check(status: str, action: str, relations: set[str]) -> Transition:
    """Return the transition for `action` from `status` by an actor with `relations`.

    403 when the actor could never take this action; 409 `report_invalid_transition` (naming
    the current state, also in `errors.status`) when the action is not possible now.
    """
    label = ACTION_LABELS.get(action, action)
    could_ever = any(a == action and t.who & relations for (_s, a), t in TRANSITIONS.items())
    if not could_ever:
        raise Forbidden("report_action_not_allowed", action=action, action_label=_(label))
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        raise Conflict("report_invalid_transition", state=status,
                       state_label=_(STATUS_LABELS[status]), action=action,
                       action_label=_(label), errors={"status": [status]})
    if not transition.who & relations:
        raise Forbidden("report_action_not_allowed", action=action, action_label=_(label))
    return transition


def _(text: str) -> str:
    from app.i18n import gettext

    return gettext(text)
