"""Who may do what: people, roles, tenants, passwords, TOTP, tokens, lockout, the audit log.

policy.py     Role, Action, Principal, Scope; can() over one RULES table; scope(); handled_by
users.py      Users/User/TokenEntry/MqttDevice, the users file (UsersFile), the CLI's edit verbs
passwords.py  argon2id Passwords, TOTP (RFC 6238), API tokens, Mosquitto $7$ hashes
lockout.py    Lockout: failed logins per user and per address, doubling waits
audit.py      AuditLog: JSON lines of logins, failures, presence changes, reloads, exports
mosquitto.py  mosquitto_files: the broker's password and ACL files from the users file

Import order inside: policy <- passwords <- users <- mosquitto; lockout and audit stand alone.
May import: switch.errors, switch.configfile. Never aiohttp (the HTTP side is switch.web), click.
"""
