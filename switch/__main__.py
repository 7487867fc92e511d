"""``python -m switch`` is the ``rufweiche`` command."""

from switch.cli import main

main()
