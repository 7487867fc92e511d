"""The supervisor <-> worker control channel, both ends.

messages.py  the messages (JSON lines over a socketpair): encode/decode
pool.py      WorkerProcess / WorkerSpec: the supervisor's end (spawn, restart, recycle)

May import: switch.call (records travel in messages), switch.errors.
"""
