"""``GET /api/v1/week.svg?tenant=…&week=YYYY-Www``: the week view of a plan (issue 18).

The picture of :func:`switch.weekview.render_svg` (the same as ``rufweiche week --svg``),
today's row framed when the week holds today. For the owner's page: an owner sees only his
own business (``dialplan.read`` for the tenant of the query; 404 for another's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final
from zoneinfo import ZoneInfo

from aiohttp import web

from rules import CallInfo, DialPlan
from switch import i18n, weekview
from switch.access.policy import Action, Principal
from switch.errors import WeekViewError
from switch.web.guard import Access, declare
from switch.web.request import PRINCIPAL, json_error, not_found

WEEK: Final = Access(Action.READ_DIALPLAN, tenant="query")


def week_routes(
    plan_of: Callable[[str], DialPlan | None],
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[web.RouteDef]:
    async def get_week(request: web.Request) -> web.StreamResponse:
        tenant = request.query.get("tenant", "")
        who = request.get(PRINCIPAL)
        if isinstance(who, Principal) and not who.sees_tenant(tenant):
            return not_found()
        plan = plan_of(tenant)
        if plan is None:
            return not_found()
        today = clock().astimezone(ZoneInfo(plan.timezone)).date()
        raw = request.query.get("week")
        try:
            monday = (
                weekview.parse_iso_week(raw) if raw else today - dt.timedelta(days=today.weekday())
            )
        except WeekViewError as exc:
            return json_error(400, f"week: {exc}")
        grid = weekview.week_grid(plan, monday, CallInfo(called=plan.numbers[0]), ())
        lang = i18n.choose(request.query.get("lang"), getattr(who, "language", None),
                           plan.spec.language)  # fmt: skip
        with i18n.using(lang):
            label = i18n._("today")
        return web.Response(
            text=weekview.render_svg(grid, today, label),
            content_type="image/svg+xml",
            headers={"Cache-Control": "no-store"},
        )

    return [declare(web.get("/api/v1/week.svg", get_week), WEEK)]


__all__ = ["week_routes"]
