"""The pjsua2 worker process: one endpoint, at most four call legs, threads allowed, no asyncio.

loop.py           Worker: the process loop (poll, control dispatch, drain, stop) and main()
driver.py         CallDriver: leg events -> call-flow events; admission, routing
commands.py       CommandRunner: the flow's commands -> SipLegs (ActiveCall: one call's handles)
seam.py           SipLegs (a Protocol; pjsua's SipEndpoint implements it) and the leg events
featurecodes.py   FeatureDesk: presence and forwarding codes, the dictation box
outbound.py       OutboundDesk: calls out from the businesses' phones, blind transfers
attended.py       AttendedTransfers: REFER with Replaces, two calls of this worker joined
originate.py      Originator: click to call — ring the person, then the customer
queueing.py       QueueDesk: queued callers, member codes, callbacks (the queue is the supervisor's)
ringback.py       Ringback: the ringback tone of transfers
forkserver.py     the zygote: imports and compiled plans once, workers forked from it
plancache.py      compiled dial plans shared by the zygote and its workers
channel.py        ControlChannel: the control channel's reader and writer threads
timers.py         Timers: the call-flow timer heap
config.py         WorkerConfig: what the process was started with
media.py          MediaServices: prompts, recordings, DTMF for the call flow's media commands
announcements.py  PromptCache: espeak-ng + sox prompts, the owner's own WAV files

May import: rules, presence (pure parts), switch.call, switch.control.messages, switch.pjsua,
switch.errors. Never asyncio, aiohttp, aiosqlite (tests/test_architecture.py).
"""
