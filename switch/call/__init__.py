"""The pure part of a call: everything about one call that needs no pjsua2, no thread, no clock.

callflow.py    CallFlow: the sans-I/O state machine of one call (events in, commands out)
flowbase.py    FlowBase / LegView: the flow's state and its only writers (along states.py)
mediaflow.py   MediaFlow: welcome, voicemail, announcement, confirm and whisper (a mixin)
transfer.py    TransferFlow: blind transfer by REFER or DTMF, recall (a mixin); transfer_target
outbound.py    outbound calls from the businesses' phones: number class, permission, identity
mediapath.py   media bypass: whether a bridged call's RTP skips the pjsua2 bridge, the SDP
trunkident.py  per-trunk SIP identity: number formats, inbound DIDs, forwarded-leg headers
states.py      CallState / LegState / MediaPhase and their transition tables (checked at run time)
events.py      the flow's events (IncomingCall); re-exports commands.py
commands.py    the flow's commands and its Outcome
prompts.py     the German prompt texts and MediaOptions
admission.py   LegBudget: capacity, the spare leg, reservations (503 + Retry-After)
features.py    what a ``*`` number is: presence feature code, dictation box (its Decision), refusal
recorder.py    CallRecorder: the only writer of CallRecord/LegRecord fields (MOS at each leg's end)
calllog.py     CallRecord / LegRecord / MediaStats / CallPhase: what a call leaves behind
quality.py     the E-model (ITU-T G.107, simplified): MOS from RTCP figures
sipheaders.py  the headers a forwarded leg carries (display name, PAI, Diversion, History-Info)

May import: rules, switch.errors. Never asyncio, threading, socket, sqlite3, pjsua2, click, aiohttp
(tests/test_architecture.py).
"""
