"""The pjsua2 worker process: one endpoint, at most four call legs, threads allowed, no asyncio.

loop.py           Worker: the process loop (poll, control dispatch, drain, stop) and main()
driver.py         CallDriver: leg events -> call-flow events; admission, routing, feature codes
commands.py       CommandRunner: the flow's commands -> SipLegs (ActiveCall: one call's handles)
seam.py           SipLegs (a Protocol; pjsua's SipEndpoint implements it) and the leg events
originate.py      Originator: click to call — ring the person, then the customer
channel.py        ControlChannel: the control channel's reader and writer threads
timers.py         Timers: the call-flow timer heap
config.py         WorkerConfig: what the process was started with
media.py          MediaServices: prompts, recordings, DTMF for the call flow's media commands
announcements.py  PromptCache: espeak-ng + sox prompts, the owner's own WAV files

May import: rules, presence (pure parts), switch.call, switch.control.messages, switch.pjsua,
switch.errors. Never asyncio, aiohttp, aiosqlite (tests/test_architecture.py).
"""
