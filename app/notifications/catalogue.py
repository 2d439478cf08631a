"""Every event type: who hears it, what it says, and whether a group robot may carry it.

This is the one table of "who hears what". Recipients are named by their relation to the
event's object; `outbox.emit` turns the names into people (the actor is never told of their own
action, and anyone who muted the type is left out). An event that reaches the community's
organisers is *organiser-facing*: only those may go to a group robot (wecom, dingtalk).

Texts are Chinese msgids rendered when read (`inbox.render`), so a translation fixed later
applies to old notifications too. `{title}` and the other placeholders come from the event's
`data` snapshot, which never holds a phone number or an address.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n import N_

# Who, relative to the object of an event:
OWNER = "owner"  # the resident whose wish it is
PROXY_POSTER = "proxy_poster"  # the grid worker who posted a wish for someone without an account
CLAIMER = "claimer"  # the volunteer holding (or, for lapsed/released, who held) the wish
ORGANISERS = "organisers"  # every organiser of the community
REPORTER = "reporter"  # who filed a 随手拍 report
HOLDER = "holder"  # whose points or redemption it is
SIGNED_UP = "signed_up"  # everyone signed up to an activity

RECIPIENT_LABELS = {
    OWNER: N_("心愿的发布人"), PROXY_POSTER: N_("代发心愿的网格员"), CLAIMER: N_("认领的志愿者"),
    ORGANISERS: N_("社区工作人员"), REPORTER: N_("上报人"), HOLDER: N_("积分或兑换的主人"),
    SIGNED_UP: N_("报名参加活动的人"),
}


@dataclass(frozen=True)
class EventType:
    recipients: tuple[str, ...]
    text: str  # the inbox line, a Chinese msgid with {placeholders} from the event's data
    label: str  # a short headline for group messages and settings ("新心愿")
    urgent: bool = False  # sent to group robots even in the webhook's quiet hours

    @property
    def organiser_facing(self) -> bool:
        return ORGANISERS in self.recipients


EVENT_TYPES: dict[str, EventType] = {
    "wish.posted": EventType(
        (ORGANISERS,), N_("新心愿待审核：{board} · {category}：{title}"), N_("新心愿")),
    "wish.approved": EventType(
        (OWNER, PROXY_POSTER), N_("心愿“{title}”已通过审核，正在等志愿者认领。"),
        N_("心愿已通过审核")),
    "wish.rejected": EventType(
        (OWNER, PROXY_POSTER), N_("心愿“{title}”没有通过审核：{note}"), N_("心愿未通过审核")),
    "wish.claimed": EventType(
        (OWNER, PROXY_POSTER, ORGANISERS), N_("{claimer} 认领了心愿“{title}”。"),
        N_("心愿已认领")),
    "wish.dispatched": EventType(
        (CLAIMER, OWNER, PROXY_POSTER), N_("社区把心愿“{title}”派给了 {claimer}。"),
        N_("心愿已派单")),
    "wish.released": EventType(
        (OWNER, PROXY_POSTER, ORGANISERS), N_("{claimer} 放弃了心愿“{title}”，它重新等待认领。"),
        N_("心愿被放弃")),
    "wish.fulfilled": EventType(
        (OWNER, PROXY_POSTER), N_("{claimer} 已完成心愿“{title}”，请确认并评价。"),
        N_("心愿待确认")),
    "wish.closed": EventType(
        (CLAIMER, ORGANISERS), N_("心愿“{title}”已确认完成，评价 {rating} 星。"), N_("心愿已完成")),
    "wish.disputed": EventType(
        (CLAIMER, ORGANISERS), N_("心愿“{title}”的完成情况有异议：{note}"), N_("心愿有异议"),
        urgent=True),
    "wish.lapsed": EventType(
        (CLAIMER, OWNER, PROXY_POSTER, ORGANISERS),
        N_("心愿“{title}”超过完成期限，已重新开放认领。"), N_("心愿超期")),
    "wish.escalated": EventType(
        (ORGANISERS,), N_("心愿“{title}”长时间无人认领，已转入派单队列：{board}"),
        N_("心愿待派单"), urgent=True),
    "points.awarded": EventType(
        (HOLDER,), N_("您获得了 {amount} 积分：{memo}"), N_("积分到账")),
    "points.adjusted": EventType(
        (HOLDER,), N_("社区调整了您的积分 {signed_amount}：{memo}"), N_("积分调整")),
    "points.expiring": EventType(
        (HOLDER,), N_("您有 {amount} 积分将在 {date} 过期，记得去爱心超市兑换。"),
        N_("积分即将过期")),
    "redemption.created": EventType(
        (HOLDER, ORGANISERS), N_("{user} 兑换了“{reward}” × {quantity}，凭取货码到爱心超市领取。"),
        N_("新兑换")),
    "redemption.fulfilled": EventType(
        (HOLDER,), N_("“{reward}” × {quantity} 已领取。"), N_("兑换已领取")),
    "redemption.cancelled": EventType(
        (HOLDER,), N_("“{reward}” × {quantity} 的兑换已取消，{amount} 积分已退还。"),
        N_("兑换已取消")),
    "redemption.expiring": EventType(
        (HOLDER,), N_("“{reward}” × {quantity} 还没领取，将在 {date} 过期，请尽快到爱心超市领取。"),
        N_("兑换即将过期")),
    "report.filed": EventType(
        (ORGANISERS,), N_("新随手拍待处理：{category}：{title}"), N_("新随手拍")),
    "report.accepted": EventType(
        (REPORTER,), N_("您的随手拍“{title}”已受理，获得 {amount} 积分。"), N_("随手拍已受理")),
    "report.resolved": EventType(
        (REPORTER,), N_("您的随手拍“{title}”已处理：{note}"), N_("随手拍已处理")),
    "activity.reminder": EventType(
        (SIGNED_UP,), N_("活动“{title}”明天 {time} 开始，地点：{place}。"), N_("活动提醒")),
    "activity.cancelled": EventType(
        (SIGNED_UP,), N_("活动“{title}”已取消：{note}"), N_("活动取消")),
}

TYPE_NAMES: tuple[str, ...] = tuple(EVENT_TYPES)
GROUP_TYPES: tuple[str, ...] = tuple(t for t, spec in EVENT_TYPES.items() if spec.organiser_facing)


def recipients_table() -> list[dict]:
    """The table as data, for README and the settings page."""
    return [{"type": name, "label": spec.label, "recipients": list(spec.recipients),
             "group": spec.organiser_facing} for name, spec in EVENT_TYPES.items()]
