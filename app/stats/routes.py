"""Statistics and 红黄蓝 ratings over HTTP.

The figures are for a community's staff (organisers, and platform admins); the ratings are read
by any member, as they hang on the notice board (公示) anyway.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_jwt_extended import current_user
from flask_smorest import Blueprint

from app.auth.decorators import admin_required, login_required
from app.communities import access
from app.communities.models import Role
from app.stats import ratings, service
from app.stats.models import RATING_LABELS
from app.stats.schemas import (
    AreaQuerySchema,
    AreaStatsSchema,
    BoardRatingsSchema,
    BoardStatsListSchema,
    MonthQuerySchema,
    PeriodQuerySchema,
    StatsSchema,
    TeamStatsListSchema,
    ThresholdsSchema,
)

blp = Blueprint("stats", __name__, url_prefix="/api/v1",
                description="The numbers a community runs on: statistics and 红黄蓝 board ratings")

@blp.route("/communities/<int:cid>/stats")
class CommunityStats(MethodView):
    @login_required
    @blp.arguments(PeriodQuerySchema, location="query")
    @blp.response(200, StatsSchema)
    def get(self, query, cid):
        """A community's figures for a period (organiser)

        Wishes posted / pending / open / claimed / fulfilled / closed / cancelled / rejected,
        办结率, satisfaction (people's ratings only) and its 1–5 distribution, median and 90th
        percentile time to claim and to close (seconds), active volunteers, points issued /
        redeemed / refunded / adjusted / expired, reports, activities and service hours.
        Dates are Asia/Shanghai calendar days, both included; default: this month so far. Wish
        figures are a cohort: the wishes posted in the period, in their state now. A reversed
        or impossible range is a 422.
        """
        access.community(cid, Role.ORGANISER)
        return service.community_stats([cid], *service.period(query))


@blp.route("/communities/<int:cid>/boards/stats")
class BoardStats(MethodView):
    @login_required
    @blp.arguments(PeriodQuerySchema, location="query")
    @blp.response(200, BoardStatsListSchema)
    def get(self, query, cid):
        """Each board's wish figures for a period (organiser)"""
        access.community(cid, Role.ORGANISER)
        start, end = service.period(query)
        return {"from": start.isoformat(), "to": end.isoformat(),
                "items": service.board_stats(cid, start, end)}


@blp.route("/communities/<int:cid>/teams/stats")
class TeamStats(MethodView):
    @login_required
    @blp.arguments(PeriodQuerySchema, location="query")
    @blp.response(200, TeamStatsListSchema)
    def get(self, query, cid):
        """Each team's figures for a period (organiser)

        A team's wishes are the cohort's wishes its members hold or did; points are what its
        members earned in the period.
        """
        access.community(cid, Role.ORGANISER)
        start, end = service.period(query)
        return {"from": start.isoformat(), "to": end.isoformat(),
                "items": service.team_stats(cid, start, end)}


@blp.route("/stats")
class AreaStats(MethodView):
    @admin_required
    @blp.arguments(AreaQuerySchema, location="query")
    @blp.response(200, AreaStatsSchema)
    def get(self, query):
        """A street's (街道) or district's figures, over all its communities (platform admin)

        Totals are recomputed over the communities' rows (the median is that of all their
        wishes, not an average of medians); `communities` lists each one's figures. Neither
        `street` nor `district`: every community.
        """
        start, end = service.period(query)
        street, district = query.get("street"), query.get("district")
        ids = service.communities_of(street, district)
        return {**service.community_stats(ids, start, end), "street": street,
                "district": district, "communities": service.by_community(ids, start, end)}


@blp.route("/communities/<int:cid>/boards/ratings")
class BoardRatings(MethodView):
    @login_required
    @blp.arguments(MonthQuerySchema, location="query")
    @blp.response(200, BoardRatingsSchema)
    def get(self, query, cid):
        """The boards' 红黄蓝 ratings of a month (any member)

        red (红旗网格): 办结率, satisfaction and median time to claim all at or past their 红
        thresholds; blue: any of them past its 蓝 threshold; yellow otherwise; null: no wishes
        posted on the board that month. A closed month (`flask stats close-month`) answers its
        stored ratings (`frozen: true`), which never change; the current month is live.
        """
        access.community(cid)
        month = service.parse_month(query.get("month"))
        items = [{**row, "rating_label": RATING_LABELS.get(row["rating"])}
                 for row in ratings.month_ratings(cid, month)]
        return {"month": month.strftime("%Y-%m"), "closed": ratings.is_closed(cid, month),
                "items": items}


@blp.route("/communities/<int:cid>/rating-thresholds")
class RatingThresholds(MethodView):
    @login_required
    @blp.response(200, ThresholdsSchema)
    def get(self, cid):
        """The community's 红黄蓝 thresholds (any member)"""
        access.community(cid)
        return ratings.thresholds_for(cid)

    @login_required
    @blp.arguments(ThresholdsSchema)
    @blp.response(200, ThresholdsSchema)
    def put(self, data, cid):
        """Change some or all 红黄蓝 thresholds (organiser)

        Fields left out stay as they are. Each 红 threshold must be at least as demanding as
        its 蓝 one. Closed months keep the ratings they were stored with.
        """
        access.community(cid, Role.ORGANISER)
        return ratings.change_thresholds(cid, data, current_user.id)
