"""The pjsua2 seam: the only package that imports pjsua2 (tests/test_architecture.py)."""
