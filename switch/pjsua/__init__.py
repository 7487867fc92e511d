"""The pjsua2 seam: the only package that imports pjsua2 (tests/test_architecture.py).

- endpoint.py: SipEndpoint (lifecycle, UDP transport, the event pump, leg commands)
- epconfig.py: EndpointConfig, MAX_LEGS and how pjsua2 is set up (threads, log, the bridge
  and jitter buffer, the account): the figures of bench/media_path.py trace to it
- bypass.py: media bypass on the legs (answer with the far side's media, the re-INVITEs)
- calls.py: Leg (the pjsua2 Call and its callbacks), SDP and stats readers
- clock.py: BridgeClock (the null sound device only while the bridge carries audio)
- media.py: MediaPorts (prompts and recordings on the legs)
- setup.py: codec priorities, quiet stdout during libCreate, the log writer, the pjsua2
  Endpoint and Account subclasses (their callbacks)

Imports switch.call, switch.errors and switch.worker.seam (SipEndpoint is used by
switch/worker/loop.py).
"""
