"""Call forwarding of a person on the owner's page (issue 18; by phone: ``*21*<number>#``).

::

    GET    /api/v1/tenants/{tenant}/people/{person}/forwarding   {"number": "+49…" | null}
    PUT    /api/v1/tenants/{tenant}/people/{person}/forwarding   {"number": "0170 1234567"}
    DELETE /api/v1/tenants/{tenant}/people/{person}/forwarding   clears it

The owner sets it for the people of his own business (``override.set``, the tenant from
the path). The number must pass the person's outbound classes (never a premium number):
403 otherwise. The store (:class:`switch.records.forwarding.ForwardingStore`) persists it
and tells the supervisor, which audits it and gives every worker the new snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from aiohttp import web

from rules import DialPlan
from switch.access.policy import Action, Principal
from switch.errors import ForwardingError
from switch.records.forwarding import ForwardingStore
from switch.web.guard import Access, declare
from switch.web.request import PRINCIPAL, json_body, json_error, json_response, not_found

PATH: Final = "/api/v1/tenants/{tenant}/people/{person}/forwarding"
FORWARDING: Final = Access(Action.READ_PRESENCE, Action.SET_OVERRIDE, tenant="path")


def forwarding_routes(
    store: ForwardingStore | None, plan_of: Callable[[str], DialPlan | None]
) -> list[web.RouteDef]:
    if store is None:
        return []

    def person_of(request: web.Request) -> tuple[DialPlan, str] | None:
        plan = plan_of(request.match_info["tenant"])
        person = request.match_info["person"]
        return None if plan is None or person not in plan.people else (plan, person)

    async def get_forwarding(request: web.Request) -> web.Response:
        found = person_of(request)
        if found is None:
            return not_found()
        plan, person = found
        number = store.snapshot(plan.tenant).get(person)
        return json_response({"tenant": plan.tenant, "person": person, "number": number})

    async def change(request: web.Request, number: str | None) -> web.Response:
        found = person_of(request)
        if found is None:
            return not_found()
        plan, person = found
        who = request.get(PRINCIPAL)
        name = who.name if isinstance(who, Principal) else "open"
        try:
            stored = store.set_checked(plan, person, number, who=name, source="web")
        except ForwardingError as exc:
            return json_error(exc.status, str(exc))
        return json_response({"tenant": plan.tenant, "person": person, "number": stored})

    async def put_forwarding(request: web.Request) -> web.Response:
        body = await json_body(request, "forwarding")
        if isinstance(body, web.Response):
            return body
        number = body.get("number") if isinstance(body, dict) else None
        if not isinstance(number, str) or not number.strip():
            return json_error(400, "forwarding: a number is required")
        return await change(request, number.strip())

    async def delete_forwarding(request: web.Request) -> web.Response:
        return await change(request, None)

    return [
        declare(web.get(PATH, get_forwarding), FORWARDING),
        declare(web.put(PATH, put_forwarding), FORWARDING),
        declare(web.delete(PATH, delete_forwarding), FORWARDING),
    ]


__all__ = ["forwarding_routes"]
