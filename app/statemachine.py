"""Lifecycles as data, shared by wishes, reports and activities.

Each domain writes its table — (state, action) → Transition(next state, who may take it), "who"
being relations of the actor to the object (owner, organiser, claimer…) — and its two error
slugs; `Lifecycle.check()` is the one place that decides whether an action is allowed now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import Conflict, Forbidden
from app.i18n import gettext


@dataclass(frozen=True)
class Transition:
    to: str
    who: frozenset[str]


def t(to: str, *who: str) -> Transition:
    return Transition(to, frozenset(who))


@dataclass(frozen=True)
class Lifecycle:
    transitions: dict[tuple[str, str], Transition]
    status_labels: dict[str, str]  # msgids, translated when a refusal names the state
    invalid_slug: str  # 409: the action is not possible in this state
    not_allowed_slug: str  # 403: the actor may not take this action
    action_labels: dict[str, str] = field(default_factory=dict)

    @property
    def actions(self) -> list[str]:
        return sorted({action for _state, action in self.transitions})

    def check(self, status: str, action: str, relations: set[str]) -> Transition:
        """Return the transition for `action` from `status` by an actor with `relations`.

        Refuses with 403 when the actor could never take this action, and with 409 (naming the
        current state, also in `errors.status`) when the action is not possible now.
        """
        label = gettext(self.action_labels[action]) if action in self.action_labels else action
        could_ever = any(a == action and tr.who & relations
                         for (_s, a), tr in self.transitions.items())
        if not could_ever:
            raise Forbidden(self.not_allowed_slug, action=action, action_label=label)
        transition = self.transitions.get((status, action))
        if transition is None:
            raise Conflict(self.invalid_slug, state=status,
                           state_label=gettext(self.status_labels[status]), action=action,
                           action_label=label, errors={"status": [status]})
        if not transition.who & relations:
            raise Forbidden(self.not_allowed_slug, action=action, action_label=label)
        return transition
