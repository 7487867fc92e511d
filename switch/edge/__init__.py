"""The Kamailio edge: registrar, flood shield, dispatcher to the workers, TLS, presence.

settings.py     EdgeSettings, WorkerDestination, load_edge_settings, settings_for_pool
config.py       template values, render, render_config, the dispatcher list, write_files
database.py     the edge's SQLite: prepare_database, forget_presence, write_subscriber_table
shared_db.py    usrloc + subscriber + uacreg in a PostgreSQL the nodes' edges share (shared_db_url)
credentials.py  the HA1-only secrets file of phones (Secrets, add_user, load_secrets)
process.py      Edge (Kamailio as a child: start, check_config, stop), kill_orphan
child.py        terminate: SIGTERM, then SIGKILL to the group (Kamailio, rtpengine)
rpc.py          JSON-RPC 2.0 to the running Kamailio
ping.py         options_ping: one SIP OPTIONS over UDP
stats.py        what the running edge counts (malformed requests) and resets (call load)
templates/      kamailio.cfg.tmpl

May import: switch.errors, switch.configfile, switch.addresses (never click: the command
``python -m switch.edge`` is switch/cli/edge.py). The names below are the package's API.
"""

from switch.edge.config import EdgePaths, render_config, render_dispatcher_list, write_files
from switch.edge.database import forget_presence, prepare_database
from switch.edge.ping import options_ping
from switch.edge.process import Edge, kill_orphan
from switch.edge.settings import (
    EdgeSettings,
    WorkerDestination,
    load_edge_settings,
    settings_for_pool,
)

__all__ = [
    "Edge",
    "EdgePaths",
    "EdgeSettings",
    "WorkerDestination",
    "forget_presence",
    "kill_orphan",
    "load_edge_settings",
    "options_ping",
    "prepare_database",
    "render_config",
    "render_dispatcher_list",
    "settings_for_pool",
    "write_files",
]
