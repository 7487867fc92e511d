"""Phone numbers as logs, records and the dashboard may show them: one rule, pure.

``+4917112345678`` -> ``+491********78``: enough to recognise the country and the last
two digits (what people say on the phone: "the one ending in 78"), and no more. The
stars keep the length, so two masked numbers of different length stay apart.

:func:`mask_number` is what the records store when a plan says ``store_caller: masked``
and what the dashboard shows; :func:`loggable_number` is the same mask for a log line,
where a missing number reads ``anonymous``. May import nothing of switch/.
"""

from __future__ import annotations

import re
from typing import Final

ANONYMOUS: Final = "anonymous"

_URI_USER = re.compile(r"^(?P<scheme>sips?:|tel:)?(?P<user>[^@;]*)(?P<rest>.*)$")


def mask_number(value: str | None) -> str | None:
    """Hide the middle of a phone number or URI user part: ``+4917112345678`` -> ``+491********78``.

    A URI keeps its scheme and host (``sip:017********78@pbx.example``); a user part of
    four characters or fewer (a feature code, an extension) is all stars.
    """
    return None if value is None else _mask(value)


def loggable_number(value: str | None) -> str:
    """:func:`mask_number` for a log line at INFO and above; ``anonymous`` when there is none."""
    return _mask(value) if value else ANONYMOUS


def _mask(value: str) -> str:
    match = _URI_USER.match(value)
    assert match is not None  # the pattern matches any string
    user = match["user"]
    if len(user) <= 4:
        masked = "*" * len(user)
    else:
        keep_head = 4 if user.startswith("+") else 3
        keep_head = min(keep_head, len(user) - 4)
        masked = user[:keep_head] + "*" * (len(user) - keep_head - 2) + user[-2:]
    return f"{match['scheme'] or ''}{masked}{match['rest']}"


__all__ = ["ANONYMOUS", "loggable_number", "mask_number"]
