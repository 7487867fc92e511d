"""``python -m switch.worker``: one pjsua2 worker process (see :mod:`switch.worker.loop`)."""

import os
import sys

from switch.worker.loop import main

sys.stdout.flush()
code = main()
sys.stdout.flush()
sys.stderr.flush()
# pjsua2's SWIG objects must not be collected after libDestroy: leave at once.
os._exit(code)
