"""Moved to :mod:`tests.helpers.records`; re-exported so the records tests' imports still work."""

from tests.helpers.records import BASE_NS, make_record

__all__ = ["BASE_NS", "make_record"]
