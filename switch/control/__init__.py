"""The supervisor <-> worker control channel, both ends.

messages.py  the messages: one frozen dataclass per op, encode/decode (JSON lines over a socketpair)
queueops.py  the queue ops (issue 19), in messages.py's unions and codec
pool.py      WorkerProcess / WorkerSpec: the supervisor's end (spawn, restart, recycle)

May import: switch.call (records travel in messages), switch.errors.
"""
