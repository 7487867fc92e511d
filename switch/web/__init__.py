"""The HTTP side (aiohttp only): API, dashboard, login, and who may use which route.

app.py            make_app, serve, Health: /metrics, /healthz, /api/v1/events, /dashboard,
                  /static; mounts the presence API and declares its access; JSON 404s
calls_api.py      /api/v1/calls, /api/v1/usage: rows within the request's Scope
voicemail_api.py  /api/v1/voicemails, /api/v1/dictations, /files/<kind>/<tenant>/<file>
clicktocall.py    /api/v1/calls/dial: click to call (issue 17), answered by the supervisor
guard.py          AuthLayer: the middleware (who + the route's Access -> 401/403/404, CSRF,
                  a Scope on the request); Access and declare() for the routes
login.py          /login, /enrol, /logout, /api/v1/me
sessions.py       browser sessions in memory, cookies, CSRF double submit
request.py        what a request carries (PRINCIPAL, SCOPE, AUDIT) and the JSON answers
dashboard.py      DashboardState (snapshot(now, scope)) and the live feed behind /api/v1/events
static/           the dashboard and login pages (plain HTML, CSS, JS)

May import: switch.access, switch.records, switch.call, switch.metrics, switch.errors,
presence (whose routes it mounts). Routes declare their Access where they are made.
"""
