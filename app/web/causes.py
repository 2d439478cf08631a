"""Why each ledger line is there, in words: the wish, the redemption, the adjustment and its reason.

    from app.web.causes import describe
    causes = describe(page["items"], viewer)     # one dict per entry, same order

`entries` are the dicts `app.ledger.service.ledger_page()` returns; what is read of each is
`reference` (the transfer's key: `wish:12:award`, `redemption:45:debit`, `redemption:45:refund`,
`activity:3:<user>`, `report:8:award`, `adjustment:…`, `expiry:lot:…`), `kind`, `memo` and
`transfer_id`. `viewer` is the User looking (or None): links to a redemption go to its owner
only (an organiser's passbook gets `url` None there).

Each cause is a dict:
    label  a short name of the kind of line ("心愿奖励", "兑换", "退还", "调整", "过期"…)
    text   the whole cause in one sentence, reason included ("微心愿「换水龙头」办结，评价 5 星",
           "社区工作人员李书记调整积分：参加防汛值守")
    url    a page about it (a local path), or None
    note   the free-text part alone, if any (an adjustment's reason, why a redemption was
           cancelled), or None — already part of `text`

Lookups are batched: one query per kind of cause on the page (wishes, redemptions, activities,
reports, the adjustments' organisers), never one per line. Texts are in the request's language.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.activities.models import Activity
from app.auth.models import User
from app.extensions import db
from app.i18n import N_, gettext
from app.ledger.models import Transfer, TransferKind
from app.reports.models import CATEGORIES as REPORT_CATEGORIES
from app.reports.models import Report
from app.store.models import EXPIRED, Redemption
from app.wishes.models import Wish

LABELS = {
    TransferKind.EARN_WISH: N_("心愿奖励"),
    TransferKind.EARN_REPORT: N_("随手拍奖励"),
    TransferKind.EARN_ACTIVITY: N_("活动奖励"),
    TransferKind.ADJUSTMENT: N_("调整"),
    TransferKind.REDEMPTION: N_("兑换"),
    TransferKind.REFUND: N_("退还"),
    TransferKind.EXPIRY: N_("过期"),
    TransferKind.DEBIT: N_("扣除"),
}


def parse_reference(reference: str) -> tuple[str, int | None, str]:
    """`wish:12:award` → ("wish", 12, "award"); keys without a numeric id give (prefix, None, …)."""
    parts = (reference or "").split(":")
    prefix = parts[0]
    if len(parts) >= 2 and parts[1].isdigit():
        return prefix, int(parts[1]), ":".join(parts[2:])
    return prefix, None, ":".join(parts[1:])


def describe(entries: list[dict], viewer: User | None) -> list[dict]:
    """The cause of each ledger entry, in words, with a link where there is a page for it."""
    refs = [parse_reference(e.get("reference", "")) for e in entries]
    wishes = _by_id(Wish, {i for p, i, _ in refs if p == "wish" and i})
    redemptions = _by_id(Redemption, {i for p, i, _ in refs if p == "redemption" and i})
    activities = _by_id(Activity, {i for p, i, _ in refs if p == "activity" and i})
    reports = _by_id(Report, {i for p, i, _ in refs if p == "report" and i})
    actors = _adjustment_actors([e for e in entries if e.get("kind") == TransferKind.ADJUSTMENT])
    out = []
    for entry, (prefix, ref_id, _rest) in zip(entries, refs, strict=True):
        kind = entry.get("kind")
        cause = {"label": gettext(LABELS.get(kind, N_("积分变动"))), "text": "", "url": None,
                 "note": None}
        if prefix == "wish" and ref_id in wishes:
            cause.update(_wish(wishes[ref_id]))
        elif prefix == "redemption" and ref_id in redemptions:
            cause.update(_redemption(redemptions[ref_id], kind, viewer))
        elif prefix == "activity" and ref_id in activities:
            cause.update(_activity(activities[ref_id]))
        elif prefix == "report" and ref_id in reports:
            cause.update(_report(reports[ref_id], viewer))
        elif kind == TransferKind.ADJUSTMENT:
            cause.update(_adjustment(entry, actors.get(entry.get("transfer_id"))))
        elif kind == TransferKind.EXPIRY:
            cause.update(text=gettext("积分过期"), note=entry.get("memo") or None)
        else:
            cause["text"] = entry.get("memo") or cause["label"]
        out.append(cause)
    return out


def _by_id(model, ids: set[int]) -> dict:
    if not ids:
        return {}
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))}


def _adjustment_actors(entries: list[dict]) -> dict[int, str]:
    """transfer id → the display name of the organiser who made the adjustment (one query)."""
    ids = {e["transfer_id"] for e in entries if e.get("transfer_id")}
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Transfer.id, User.display_name).join(User, User.id == Transfer.actor_id)
        .where(Transfer.id.in_(ids))).all()
    return dict(rows)


def _wish(wish: Wish) -> dict:
    text = gettext("微心愿「{title}」办结").format(title=wish.title)
    if wish.rating:
        text += gettext("，评价 {n} 星").format(n=wish.rating)
    return {"text": text, "url": f"/wishes/{wish.id}"}


def _activity(activity: Activity) -> dict:
    text = gettext("参加志愿活动「{title}」，志愿时长 {hours} 小时").format(
        title=activity.title, hours=f"{activity.hours:g}")
    return {"text": text, "url": f"/activities/{activity.id}"}


def _report(report: Report, viewer: User | None) -> dict:
    # The report's page is the reporter's (an organiser reading a passbook sees it via the queue).
    url = f"/reports/{report.id}" if viewer is not None and viewer.id == report.reporter_id else None
    what = gettext(REPORT_CATEGORIES.get(report.category, report.category))
    text = gettext("随手拍「{category}：{location}」被受理").format(category=what,
                                                               location=report.location)
    return {"text": text, "url": url}


def _redemption(redemption: Redemption, kind: str, viewer: User | None) -> dict:
    url = (f"/store/redemptions/{redemption.id}"
           if viewer is not None and viewer.id == redemption.user_id else None)
    what = gettext("「{name}」× {quantity}").format(name=redemption.reward_name,
                                                   quantity=redemption.quantity)
    if kind == TransferKind.REFUND:
        if redemption.status == EXPIRED:
            text = gettext("兑换{what} 逾期未领取，积分退还").format(what=what)
        else:
            text = gettext("兑换{what} 已取消，积分退还").format(what=what)
            if redemption.cancel_reason:
                text += gettext("（原因：{reason}）").format(reason=redemption.cancel_reason)
        return {"text": text, "url": url, "note": redemption.cancel_reason or None}
    if redemption.at_counter:
        return {"text": gettext("在兑换日柜台兑换{what}").format(what=what), "url": url}
    return {"text": gettext("兑换{what}").format(what=what), "url": url}


def _adjustment(entry: dict, actor_name: str | None) -> dict:
    reason = entry.get("memo") or ""
    if actor_name:
        text = gettext("社区工作人员{name}调整积分").format(name=actor_name)
    else:
        text = gettext("社区调整积分")
    if reason:
        text += gettext("：{reason}").format(reason=reason)
    return {"text": text, "note": reason or None}
