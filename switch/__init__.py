"""Rufweiche's switch: everything with I/O. The packages and who may import whom:

    cli/         the ``rufweiche`` command and ``python -m switch.edge`` (the only click code)
      └─> supervisor/   the asyncio process: composes everything below, runs the workers
            ├─> web/        aiohttp: API, dashboard, login          ─> access/, records/
            ├─> records/    the calls database (the only owner)     ─> call/
            ├─> edge/       Kamailio: rendered, started, watched
            └─> control/    the supervisor <-> worker channel       ─> call/
    worker/      the pjsua2 process (threads, no asyncio)          ─> call/, control/, pjsua/
    pjsua/       the only pjsua2 code; implements worker.seam
    call/        pure: call flow, events, records, SIP headers, quality (no I/O at all)
    i18n.py      German first: gettext catalogues (locale/), --lang, Babel dates (issue 18)
    mail.py      e-mail to owners through their own mail server (smtplib in a thread)
    weekview.py  pure: the week grid and its text/SVG (the CLI's `week`, the owner's page)
    errors.py    the error tree of the package; configfile.py the operator-file loader;
    addresses.py the one host:port parser (pure: the worker uses it too)
    metrics.py   the Prometheus registry

switch imports presence and rules; nothing imports switch. tests/test_architecture.py holds
these rules.
"""
