"""The supervisor <-> worker control channel, both ends.

messages.py  the messages: one frozen dataclass per op, encode/decode (JSON lines over a socketpair)
callops.py   the console's and click to call's ops (issues 17, 18), in messages.py's codec
queueops.py  the queue ops (issue 19), in messages.py's unions and codec
fields.py    typed readers of the JSON fields, shared by the codecs
pool.py      WorkerProcess / WorkerSpec: the supervisor's end (spawn, restart, recycle)

May import: switch.call (records travel in messages), switch.errors.
"""
