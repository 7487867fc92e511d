"""One test-helper package: real peers, ports, processes and builders the tests share.

    ports.py        THE free-port helper (free_port: UDP/TCP/both, spans, even, low)
    processes.py    stop_process, running, Process (asyncio), wait_udp_bound, poll_until,
                    run_reporting (a program that reports JSON), REPO, SHARED, DOCS
    sipp.py         THE SIPp wrapper: sipp_argv, Sipp, caller/target/load/wait_all/start_bound,
                    stat files;
                    BUSINESS, BUSINESS_E164, CALLER, PCAP (used by bench/ too)
    rawsip.py       SIP by hand over UDP: sip_request, sip_options, options_ping, malformed_invite
    worker.py       WorkerProcess (python -m switch.worker), ended, plan, write_plan, make_prompts,
                    callee_worker, voicemail_plan, assert_stored_wav
    switch.py       Switch (python -m switch run), plan_text
    edge.py         edge_settings, needs_kamailio, needs_db_postgres, the edge tests' SIPp peers
    netns.py        the namespaces (Net, network, marks), anna_plan, baresip and the switch inside
    pg.py           PostgreSQL: fresh_schema, fresh_database, private_server, location_contacts
    transfer.py     the transfer tests' SIPp peers and mueller_plan (Tischlerei Müller)
    desk.py         the console/owner pages: service_plan, OTHER_PLAN, users_with_tokens, SMTP
    mosquitto.py    MosquittoBroker, mosquitto_broker
    baresip.py      Baresip (headless phone), ctrl_request, contact_status, Tshark, needs_baresip
    blf.py          a BLF key as a SIPp watcher scenario; notify_bodies/notify_states of its trace
    rtp.py          RtpSink, G.711 A-law decoding (ALAW, rms, tone_packets)
    callflow.py     builders and Hypothesis strategies of the pure call-flow tests
    fakesip.py      FakeSip and DriverRig, the scripted SipLegs of the in-process worker tests
    records.py      make_record: synthetic call records
    queues.py       the queue peer tests' plans, settings, switch start, callers, members, audio
    web.py          live_app, chromium_page, auth_site (the HTTP app on a real socket),
                    needs_chromium, box_message, dashboard_row
    hostile.py, netns_torture.py   programs run inside ``unshare -n``
    full_disk_run.py                the program run inside ``unshare -m`` (a full disk)

Rules: helpers import switch/, presence/, rules/ and each other, never a test module; pytest
fixtures stay in conftest.py files (make_switch and net in tests/switch/, start_edge in
tests/switch/edge/, the broker in tests/presence/). Data files stay beside their tests
(tests/switch/sipp/, tests/switch/edge/scenarios/, tests/presence/data/).
"""
