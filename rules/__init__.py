"""Rufweiche dial-plan language: pure models and the routing decision.

Nothing in this package performs network I/O, reads a clock or imports asyncio. The clock
(``now``) and the presence snapshot come in as arguments to :func:`rules.decide`; the loader
reads the YAML files it is given and nothing else.

Public API::

    load_plan(path) / load_plan_text(text, source) -> DialPlan     raise DialPlanError
    load_dialplans(paths) -> DialPlanSet                           files and/or directories
    decide(plan, CallInfo(called, caller), presence, now) -> Decision
    normalize_number(raw, region="DE") -> "+49..." | None
    week_grid(plan, call, presence, year, week) -> ((slot, Decision), ...)   for the week view
    DialPlan.day_status(date) -> DayStatus (holiday / closed day / vacation)
    parse_presence_arg(plan, "buero=away until 14:00", now) -> PresenceSetting   for the CLI
    presence_snapshot(settings, now) -> PresenceSnapshot           the settings in effect at now
    DialPlan.warnings, DialPlanSet.warnings -> (Problem, ...)       printed by `rufweiche check`
"""

from rules.days import DayStatus
from rules.decide import CallInfo, decide
from rules.decision import Decision, Failure, Final, FinalKind, OnFailure, Step, Target
from rules.errors import DialPlanError, PresenceArgumentError, Problem, RulesError
from rules.loader import DialPlanSet, load_dialplans, load_plan, load_plan_text
from rules.numbers import normalize_number
from rules.plan import DialPlan, Person
from rules.presence import (
    PresenceSetting,
    PresenceSnapshot,
    PresenceState,
    parse_presence_arg,
    presence_snapshot,
)
from rules.week import wall_instant, week_days, week_grid, week_slots, week_status

__all__ = [
    "CallInfo",
    "DayStatus",
    "Decision",
    "DialPlan",
    "DialPlanError",
    "DialPlanSet",
    "Failure",
    "Final",
    "FinalKind",
    "OnFailure",
    "Person",
    "PresenceArgumentError",
    "PresenceSetting",
    "PresenceSnapshot",
    "PresenceState",
    "Problem",
    "RulesError",
    "Step",
    "Target",
    "decide",
    "load_dialplans",
    "load_plan",
    "load_plan_text",
    "normalize_number",
    "parse_presence_arg",
    "presence_snapshot",
    "wall_instant",
    "week_days",
    "week_grid",
    "week_slots",
    "week_status",
]
