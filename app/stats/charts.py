"""The dashboard's pictures of the numbers: weekly trend charts as SVG, and each headline
figure beside last month's.

Charts are drawn on the server with pygal and shown with <img>: no JavaScript on a cheap
phone, nothing for the page's Content-Security-Policy to allow but our own origin. pygal puts
a config <script> and comments naming its web site into every SVG even with `js=[]`; an XML
filter takes them out, so a chart holds no script and no address but the SVG namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree

import pygal
from pygal.style import Style

from app.i18n import N_, gettext

# An <img> SVG may only use fonts installed on the phone: Chinese ones first, by their names on
# Android/Linux (Noto/Source Han), iOS/macOS (PingFang) and Windows (YaHei).
FONT_STACK = ('"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", '
              '"Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif')
# About the width a chart gets on a 360 px phone (inside the page's and card's padding), so its
# 13 px labels are drawn near 13 px there; wider screens scale it up.
WIDTH, HEIGHT = 320, 240
RED, BLUE = "#b5102a", "#1f5fa8"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

STYLE = Style(
    font_family=FONT_STACK, background="#ffffff", plot_background="#ffffff",
    foreground="#222222", foreground_strong="#222222", foreground_subtle="#d8d8d8",
    colors=(RED, BLUE), opacity="0.85", opacity_hover="0.85",
    label_font_size=13, major_label_font_size=13, legend_font_size=14, value_font_size=13,
    no_data_font_size=18, tooltip_font_size=13,
    guide_stroke_color="#cccccc", major_guide_stroke_color="#cccccc",
    guide_stroke_dasharray="2,3", major_guide_stroke_dasharray="2,3",
)


@dataclass(frozen=True)
class Chart:
    title: str  # a msgid
    kind: str  # "line" or "bar"
    series: tuple[tuple[str, str], ...]  # (key in a weekly_series point, legend msgid)


CHARTS = {
    "wishes": Chart(N_("每周心愿：发布与办结"), "line",
                    (("posted", N_("发布")), ("closed", N_("已办结")))),
    "completion": Chart(N_("每周办结率"), "line", (("completion_rate", N_("办结率")),)),
    "points": Chart(N_("每周积分：发放与兑换"), "line",
                    (("points_issued", N_("发放")), ("points_redeemed", N_("兑换")))),
    "hours": Chart(N_("每周志愿服务时长"), "bar", (("service_hours", N_("服务时长（小时）")),)),
}
UNITS = {"wishes": "count", "completion": "percent", "points": "count", "hours": "hours"}


def week_label(point: dict) -> str:
    day = point["week_start"]
    return f"{day.month}/{day.day}"


def _value(name: str, point: dict, key: str):
    value = point.get(key)
    if value is None:
        return None
    return round(value * 100, 1) if UNITS[name] == "percent" else value


def _ticks(top: float, unit: str) -> list[float]:
    """Whole, round steps from 0 to at least `top` (pygal alone would label 0.5 volunteers)."""
    if unit == "percent":
        return [0, 25, 50, 75, 100]
    top = max(top, 1)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top / step <= 5:
            break
    else:
        step = 10 ** len(str(int(top // 5)))
    count = -(-int(top) // step)  # ceiling
    return [i * step for i in range(count + 1)]


def _cleaned(title: str):
    """An XML filter: remove every <script> and comment pygal wrote (its config script, its
    web addresses), and name the drawing by its title instead of "Pygal"."""

    def clean(root):
        for parent in list(root.iter()):
            for child in list(parent):
                tag = child.tag
                if tag is ElementTree.Comment or (isinstance(tag, str) and (
                        tag == "script" or tag.endswith("}script"))):
                    parent.remove(child)
        heading = root.find("title")
        if heading is not None:
            heading.text = title
        return root

    return clean


def render_svg(name: str, series: list[dict]) -> bytes:
    """The chart `name` of a weekly series (app.stats.service.weekly_series) as SVG bytes."""
    chart = CHARTS[name]
    unit = UNITS[name]
    config = pygal.Config(
        js=[], disable_xml_declaration=True,
        width=WIDTH, height=HEIGHT, explicit_size=True, style=STYLE,
        show_legend=len(chart.series) > 1, legend_at_bottom=True, legend_at_bottom_columns=2,
        show_minor_x_labels=False, x_labels_major_every=2, truncate_label=-1,
        dots_size=3, stroke_style={"width": 2.5}, margin=8, spacing=8,
        no_data_text=gettext("暂无数据"), tooltip_fancy_mode=False, print_values=False,
        show_y_guides=True, show_x_guides=False, pretty_print=False,
    )
    drawn = (pygal.Bar if chart.kind == "bar" else pygal.Line)(config)
    drawn.add_xml_filter(_cleaned(gettext(chart.title)))
    drawn.x_labels = [week_label(p) for p in series]
    top = 0.0
    for position, (key, legend) in enumerate(chart.series):
        values = [_value(name, p, key) for p in series]
        top = max([top, *(v for v in values if v is not None)])
        # The second series is dashed, so the two differ by more than their colour.
        style = {"width": 2.5, "dasharray": "6,4"} if position else {"width": 2.5}
        drawn.add(gettext(legend), values, stroke_style=style)
    drawn.y_labels = _ticks(top, unit)
    drawn.range = (0, drawn.y_labels[-1])
    if unit == "percent":
        drawn.value_formatter = lambda v: f"{v:g}%"
    return drawn.render(is_unicode=True).encode("utf-8")


def describe(name: str, series: list[dict]) -> str:
    """The chart's alt text: what it shows and this week's figures (the table has them all)."""
    chart = CHARTS[name]
    latest = series[-1] if series else {}
    parts = []
    for key, legend in chart.series:
        parts.append(f"{gettext(legend)} {format_value(UNITS[name], latest.get(key))}")
    return gettext("{title}，近 {weeks} 周。本周：{figures}").format(
        title=gettext(chart.title), weeks=len(series), figures=gettext("，").join(parts))


# --- figures and their change since last month ----------------------------------------------

def number(value: float, digits: int = 1) -> str:
    """2, 1.5, 12.3 — never 2.0."""
    return f"{round(float(value), digits):g}" if digits else str(round(value))


def duration(seconds: float | None) -> str:
    """A time in the unit people use for it: minutes, hours or days."""
    if seconds is None:
        return "—"
    seconds = abs(seconds)
    if seconds < 3600:
        return gettext("{n} 分钟").format(n=round(seconds / 60))
    if seconds < 48 * 3600:
        return gettext("{n} 小时").format(n=number(seconds / 3600))
    return gettext("{n} 天").format(n=number(seconds / 86400))


def format_value(unit: str, value) -> str:
    if value is None:
        return "—"
    if unit == "percent":  # a rate 0–1 in the series; charts pass it on unscaled
        return f"{number(value * 100)}%"
    if unit == "score":  # out of 5, said in the figure's label
        return f"{value:.1f}"
    if unit == "duration":
        return duration(value)
    if unit == "hours":
        return gettext("{n} 小时").format(n=number(value))
    return str(value)


def _difference(unit: str, current, previous) -> tuple[float, str]:
    """The change, rounded as it is shown, and its size in words (no sign)."""
    if unit == "percent":
        points = round((current - previous) * 100, 1)
        return points, gettext("{n} 个百分点").format(n=number(abs(points)))
    if unit == "score":
        change = round(current - previous, 1)
        return change, f"{abs(change):.1f}"
    if unit == "duration":
        change = round(current - previous)
        return (0 if abs(change) < 60 else change), duration(change)
    if unit == "hours":
        change = round(current - previous, 1)
        return change, gettext("{n} 小时").format(n=number(abs(change)))
    change = current - previous
    return change, str(abs(change))


# (key, label msgid, unit, where in community_stats)
FIGURES = (
    ("posted", N_("发布的心愿"), "count", ("wishes", "posted")),
    ("closed", N_("其中已办结"), "count", ("wishes", "closed")),
    ("completion_rate", N_("办结率"), "percent", ("wishes", "completion_rate")),
    ("satisfaction", N_("平均满意度（满分 5）"), "score", ("wishes", "satisfaction", "average")),
    ("claim_median", N_("认领用时（中位数）"), "duration",
     ("wishes", "time_to_claim_seconds", "median")),
    ("active_volunteers", N_("活跃志愿者"), "count", ("volunteers", "active")),
    ("points_issued", N_("发放积分"), "count", ("points", "issued")),
    ("points_redeemed", N_("兑换积分"), "count", ("points", "redeemed")),
    ("reports_received", N_("收到上报"), "count", ("reports", "received")),
    ("reports_resolved", N_("上报已解决"), "count", ("reports", "resolved")),
    ("service_hours", N_("志愿服务时长"), "hours", ("activities", "service_hours")),
)


def _dig(stats: dict, path: tuple[str, ...]):
    for key in path:
        stats = stats.get(key) if isinstance(stats, dict) else None
    return stats


def month_over_month(current: dict, previous: dict) -> list[dict]:
    """Each headline figure of `current` (community_stats) beside `previous`'s.

    `direction` is "up", "down", "same", or None when either month has no figure (a rate of
    nothing, a median of no claims): a change from nothing is not a change.
    """
    figures = []
    for key, label, unit, path in FIGURES:
        now, before = _dig(current, path), _dig(previous, path)
        direction, change = None, ""
        if now is not None and before is not None:
            shown, change = _difference(unit, now, before)
            direction = "up" if shown > 0 else "down" if shown < 0 else "same"
        figures.append({"key": key, "label": gettext(label), "value": format_value(unit, now),
                        "previous": format_value(unit, before), "direction": direction,
                        "change": change})
    return figures
