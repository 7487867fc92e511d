"""Who may do what: people, roles, tenants, passwords, TOTP, tokens, the audit log.

auth.py   users file, roles and scopes, argon2 passwords, TOTP, API tokens, lockout, Mosquitto files
audit.py  AuditLog: JSON lines of logins, failures, presence changes, reloads, exports

May import: switch.errors. Never aiohttp (the HTTP side is switch.web.guard), click.
"""
