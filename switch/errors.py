"""The error tree of the switch package.

::

    SwitchError                any problem raised by switch/ itself
    └── CallFlowError          a CallFlow was driven wrongly (unknown leg, handle() before
                               start(), start() twice): a bug in the code that drives it,
                               never something a SIP peer can cause
    └── MediaQualityError      an input to the MOS estimate is out of range (also a
                               ValueError)

Protocol-level surprises (a 200 after our CANCEL, an event after the call ended) are not
errors: the call flow answers them with the commands that keep the world consistent.
Add new classes here, under :class:`SwitchError`, with the attributes a caller acts on.
"""

from __future__ import annotations


class SwitchError(Exception):
    """Base class of every error raised by switch/."""


class CallFlowError(SwitchError):
    """A :class:`~switch.call.callflow.CallFlow` was used against its contract.

    ``call_id`` names the call; ``leg`` the leg id the caller passed, when one was involved.
    """

    def __init__(self, message: str, *, call_id: str, leg: int | None = None) -> None:
        super().__init__(message)
        self.call_id = call_id
        self.leg = leg


class MediaQualityError(SwitchError, ValueError):
    """An input of the E-model (:mod:`switch.call.quality`) is outside its domain."""
