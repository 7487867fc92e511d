"""The HTTP side (aiohttp only): API, dashboard, login.

app.py        make_app, serve, Health: /metrics, /healthz, /api/v1/calls, /api/v1/events, /dashboard
guard.py      the access middleware: sessions, /login, /enrol, /logout, CSRF, tenant scope
dashboard.py  DashboardState and the live feed behind /api/v1/events
static/       the dashboard page (plain HTML, CSS, JS)

May import: switch.access, switch.records, switch.call, switch.metrics, switch.errors.
"""
