"""``python -m switch.edge``: render and run the Kamailio edge on a host of its own."""

from switch.cli.edge import main

main()
