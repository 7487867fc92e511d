"""Everything with I/O: CLI, settings, supervisor, workers, the call flow, the pjsua2 seam."""
