"""A BLF key as SIPp plays it: SUBSCRIBE (RFC 3856) to a person's presence with digest
auth, answer every NOTIFY; and the PIDF bodies of those NOTIFYs from SIPp's message trace.

:func:`write_watcher` writes the scenario; the caller runs it (``-au``/``-ap`` give the
credentials, ``-trace_msg`` the message file that :func:`notify_bodies` reads).
"""

from __future__ import annotations

import re
from pathlib import Path

from presence import pidf
from rules.presence import PresenceState

_SUBSCRIBE = """
      SUBSCRIBE sip:{presentity} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{watcher}>;tag=[pid]W[call_number]
      To: <sip:{presentity}>
      Call-ID: [call_id]
      CSeq: {cseq} SUBSCRIBE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      {auth}
      Max-Forwards: 70
      Event: presence
      Accept: application/pidf+xml
      Expires: 120
      Content-Length: 0
"""

_NOTIFY = """  <recv request="NOTIFY"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
"""


def watcher_scenario(presentity: str, watcher: str, notifies: int) -> str:
    """``watcher`` (``user@domain``) subscribes to ``presentity`` (``user@domain``), once
    without and once with credentials (407), and takes ``notifies`` NOTIFYs."""
    user = watcher.split("@", 1)[0]
    first, second = (
        _SUBSCRIBE.format(presentity=presentity, watcher=watcher, user=user, cseq=cseq, auth=auth)
        for cseq, auth in ((1, ""), (2, "[authentication]"))
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="watch presence">
  <send retrans="500"><![CDATA[
{first}
  ]]></send>
  <recv response="407" auth="true"/>
  <send retrans="500"><![CDATA[
{second}
  ]]></send>
  <recv response="202" optional="true" next="notify"/>
  <recv response="200"/>
  <label id="notify"/>
{_NOTIFY * notifies}</scenario>
"""


def write_watcher(path: Path, presentity: str, watcher: str, notifies: int) -> Path:
    """:func:`watcher_scenario` written to ``path``."""
    path.write_text(watcher_scenario(presentity, watcher, notifies), encoding="utf-8")
    return path


def notify_bodies(message_file: Path) -> list[str]:
    """The bodies of the NOTIFYs SIPp logged (``-trace_msg``) as received, in order."""
    try:
        text = message_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    bodies = []
    for chunk in re.split(r"^-{20,}.*$", text, flags=re.MULTILINE):
        if "message received" not in chunk:
            continue
        message = chunk.split(":\n", 1)[-1].lstrip()
        if not message.startswith("NOTIFY "):
            continue
        parts = re.split(r"\r?\n\r?\n", message, maxsplit=1)
        bodies.append(parts[1].strip() if len(parts) > 1 else "")
    return bodies


def notify_states(message_file: Path) -> list[PresenceState]:
    """The presence state each received NOTIFY's PIDF body says, in order."""
    return [pidf.parse(body).state for body in notify_bodies(message_file)]
