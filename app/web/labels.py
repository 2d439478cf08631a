"""What a wish's actions are called on the pages: the timeline's steps, buttons and answers.

One plain label per action of the transition table (issue 8, Decisions), marked N_ here and
translated where shown (`gettext`). Status badges use `app.wishes.transitions.STATUS_LABELS`.
"""

from __future__ import annotations

from app.i18n import N_, gettext
from app.wishes.transitions import STATUS_LABELS

# The timeline: what happened, in plain words. `{name}` is the actor's display name,
# `{days}` the community's auto-confirm days.
STEPS = {
    "post": N_("已发布"),
    "approve": N_("已审核"),
    "claim": N_("已认领（{name}）"),
    "assign": N_("社区派单"),
    "release": N_("已退回"),
    "fulfil": N_("已完成"),
    "confirm": N_("已评价"),
    "auto_confirm": N_("{days}天未评价，系统自动确认"),
    "dispute": N_("未解决，已退回志愿者"),
    "lapse": N_("超时未完成，已重新开放"),
    "escalate": N_("已提交社区派单"),
    "reject": N_("未通过"),
    "cancel": N_("已撤回"),
    "extend": N_("已延期"),
}
BY_PROXY = N_("（社区代办）")
SYSTEM = "系统"  # the actor name app.wishes.service.timeline gives the system's steps

# What the person can do: the name of the action (buttons, and refusals naming it).
ACTIONS = {
    "approve": N_("通过审核"),
    "reject": N_("不通过"),
    "cancel": N_("撤回"),
    "claim": N_("认领"),
    "assign": N_("派单"),
    "release": N_("退回"),
    "extend": N_("延期"),
    "fulfil": N_("标记已完成"),
    "confirm": N_("确认并评价"),
    "dispute": N_("退回重办"),
}

# The answer after an action succeeded (a flash on the next page).
DONE = {
    "approve": N_("已通过审核，心愿已开放给志愿者认领。"),
    "reject": N_("已标记为未通过，居民会看到您写的原因。"),
    "cancel": N_("心愿已撤回。"),
    "claim": N_("认领成功！请尽快联系居民，并在期限前办好。"),
    "assign": N_("已派单，志愿者会看到这个心愿。"),
    "release": N_("心愿已退回，重新开放给其他志愿者认领。"),
    "extend": N_("已延期，请在新的期限前办好。"),
    "fulfil": N_("已标记完成，居民确认后积分到账。"),
    "confirm": N_("感谢您的评价！心愿已办结。"),
    "dispute": N_("已告诉志愿者还没办好，志愿者会继续帮您。"),
}


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS[status])


def action_label(action: str) -> str:
    return gettext(ACTIONS.get(action, action))


def step_label(step: dict, auto_confirm_days: int) -> str:
    """One timeline step (a dict of `service.timeline`) in words, proxy steps marked."""
    text = gettext(STEPS.get(step["action"], step["action"])).format(
        name=step["actor_name"], days=auto_confirm_days)
    return text + gettext(BY_PROXY) if step["by_proxy"] else text


def step_actor(step: dict) -> str | None:
    """Who took a step, beside its label: nobody for the system's steps (deadlines, automatic
    approval), nor for a claim (its label names the volunteer already)."""
    if step["action"] == "claim" or (step["actor_id"] is None and step["actor_name"] == SYSTEM):
        return None
    return step["actor_name"]
