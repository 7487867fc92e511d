"""The pjsua2 worker process: one endpoint, at most four call legs, threads allowed, no asyncio.

loop.py           Worker: the process loop (poll, control messages, drain, stop) and main()
seam.py           the leg events (and the SipLegs seam) between the worker and switch/pjsua/
media.py          MediaServices: prompts, recordings, DTMF for the call flow's media commands
announcements.py  PromptCache: espeak-ng + sox prompts, the owner's own WAV files

May import: rules, presence (pure parts), switch.call, switch.control.messages, switch.pjsua,
switch.errors. Never asyncio, aiohttp, aiosqlite (tests/test_architecture.py).
"""
