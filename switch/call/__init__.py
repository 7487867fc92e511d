"""The pure part of a call: everything about one call that needs no pjsua2, no thread, no clock.

callflow.py    CallFlow: the sans-I/O state machine of one call (events in, commands out)
events.py      the flow's events and commands
calllog.py     CallRecord / LegRecord / MediaStats: what a call leaves behind
quality.py     the E-model (ITU-T G.107, simplified): MOS from RTCP figures
sipheaders.py  the headers a forwarded leg carries (display name, PAI, Diversion, History-Info)

May import: rules, switch.errors. Never asyncio, threading, socket, sqlite3, pjsua2, click, aiohttp
(tests/test_architecture.py).
"""
