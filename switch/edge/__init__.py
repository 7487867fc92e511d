"""The Kamailio edge: registrar, flood shield, dispatcher to the workers, TLS, presence.

edge.py         EdgeSettings, the rendered kamailio.cfg, the Kamailio child process and its RPC
credentials.py  the HA1-only secrets file of phones (subscriber table)
templates/      kamailio.cfg.tmpl

May import: switch.errors. Runs alone as ``python -m switch.edge``.
"""
