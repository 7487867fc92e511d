"""The supervisor process (asyncio): it composes and runs everything that is not a worker.

app.py         main (``rufweiche run``) and serve_switch: the order the parts start in, every
               long-lived task under one TaskGroup
parts.py       the parts, made or started one function each: start_records, start_presence,
               start_edge, start_http, start_queues, make_desk, run_workers …
supervisor.py  Supervisor: worker reports, presence replication to the workers, health
reload.py      the dial-plan watcher and the edge restart after a reload
topology.py    worker_specs and edge_settings: what the settings and plans make of the pool
settings.py    Settings: the settings file, validated once at load (its ``edge:`` section too)
voicemail.py   VoicemailBox: voicemails and dictations filed by the workers
trunkstate.py  TrunkMonitor: the trunks' registration (uac.reg_dump) for health, metrics, dashboard
clicktocall.py DialDesk: click to call — permission, a worker with room, Originate
mediastate.py  rtpengine's state (running, pid, restarts) for /healthz and /metrics
relayfigures.py  a bypassed call's media figures from rtpengine (ng query), into its record

May import every other switch package except switch.worker and switch.cli.
"""
