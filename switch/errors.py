"""The error tree of the switch package. Every exception that switch/ raises is one of these.

::

    SwitchError                            never shown with a traceback: the CLI prints str(exc)
    ├── CallFlowError(.call_id, .leg)      a CallFlow was driven against its contract (a bug in
    │                                      the driving code, never something a SIP peer causes)
    ├── ControlProtocolError (ValueError)  a control-channel line that is not one of our messages
    ├── ForkServerError                    the worker fork-server (zygote) cannot fork a worker
    ├── MediaQualityError (ValueError)     an E-model input outside its domain
    ├── UnroutableTarget(.target) (ValueError)  a dial-plan target that no SIP URI can be made of
    ├── EndpointError                      the pjsua2 endpoint could not do what was asked
    │   ├── LegUnavailable(.sip_status)    pjsua2 refused a leg (PJ_ETOOMANY -> 503)
    │   └── MediaPortError                 a player or recorder could not be made
    ├── AnnouncementError                  a prompt could not be spoken or converted
    ├── RecordsError(.path)                the calls database cannot be used
    ├── VoicemailError                     a voicemail or dictation cannot be filed or served
    ├── PrivacyError(.subject)             an export/delete/purge that cannot be done as asked
    ├── MessageError(.field)               a message for the owner (Telefonnotiz) that is unusable
    ├── MailError(.host)                   an e-mail the owner's mail server did not take
    ├── ForwardingError(.status)           a call forwarding that may not be set (0900, ...)
    ├── ConfigError(.path, .line, .column, .key)   a file the operator wrote is wrong:
    │   │                                  "edge.yaml:12:3: listen: ..., did you mean 'listen_tls'?"
    │   ├── SettingsError                  the settings file
    │   ├── UsersFileError                 the users file (also an AccessError)
    │   ├── CredentialsError               the phones' secrets file
    │   ├── EdgeConfigError(.output)       edge settings (also an EdgeError)
    │   └── WeekViewError (ValueError)     a bad --week / --presence for the week view
    ├── EdgeError                          the Kamailio edge
    │   ├── EdgeConfigError                (see above)
    │   ├── EdgeStartError(.log)           Kamailio did not come up; .log is its last output
    │   ├── MediaRelayError(.log)          rtpengine did not come up; .log is its last output
    │   └── EdgeRpcError(.code)            a JSON-RPC call to Kamailio failed
    ├── AccessError                        people, roles, passwords, tokens
    │   ├── UsersFileError                 (see above)
    │   └── UserError                      a user command that cannot be done (unknown user, ...)
    └── UsageError                         a command line that cannot be carried out (CLI)

Protocol-level surprises (a 200 after our CANCEL, an event after the call ended) are not
errors: the call flow answers them with the commands that keep the world consistent.
Add new classes here, under :class:`SwitchError`, with the attributes a caller acts on.
No class here derives from a library's exception (click, aiohttp, pydantic).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


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


class ControlProtocolError(SwitchError, ValueError):
    """A line on the supervisor <-> worker channel is not one of :mod:`switch.control.messages`."""


class MediaQualityError(SwitchError, ValueError):
    """An input of the E-model (:mod:`switch.call.quality`) is outside its domain."""


class UnroutableTarget(SwitchError, ValueError):
    """A dial-plan target from which no SIP request URI can be made (``target`` names it)."""

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.target = target


class ForkServerError(SwitchError):
    """The zygote (switch/worker/forkserver.py) did not start or did not fork a worker; the
    pool then spawns that worker the old way."""


class EndpointError(SwitchError):
    """The pjsua2 endpoint could not do what was asked."""


class LegUnavailable(EndpointError):
    """pjsua2 refused to create a call leg; ``sip_status`` is what the caller should get."""

    def __init__(self, message: str, *, sip_status: int = 503) -> None:
        super().__init__(message)
        self.sip_status = sip_status


class MediaPortError(EndpointError):
    """A pjsua2 player or recorder could not be created."""


class AnnouncementError(SwitchError):
    """A prompt could not be spoken (espeak-ng) or converted (sox)."""


class RecordsError(SwitchError):
    """The calls database cannot be used; ``path`` names it when known."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class RecordsUnavailableError(RecordsError):
    """The shared records database does not answer now (PostgreSQL restarting, failing over,
    the network): a writer spools and retries; a tool may simply try again later."""


class VoicemailError(SwitchError):
    """A voicemail or dictation cannot be filed or served."""


class MessageError(SwitchError):
    """A message for the owner (Telefonnotiz) that cannot be taken; ``field`` names the bad key."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


class MailError(SwitchError):
    """An e-mail the configured mail server did not take (or no mail server for the tenant)."""

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(message)
        self.host = host


class ForwardingError(SwitchError):
    """A call forwarding that may not be set; ``status`` is the HTTP/SIP status to answer
    (403: the number's class is not allowed; 400: not a number; 404: no such person)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class PrivacyError(SwitchError):
    """An export, delete or purge that cannot be done as asked; ``subject`` names whose data."""

    def __init__(self, message: str, *, subject: str = "") -> None:
        super().__init__(message)
        self.subject = subject


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a file the operator wrote, 1-based like an editor counts."""

    path: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(SwitchError):
    """A file the operator wrote cannot be used. ``problems`` lists every problem found;
    ``path``, ``line``, ``column`` and ``key`` are those of the first one.
    ``str()`` is one ``file:line:col: key: message`` line per problem.
    """

    def __init__(self, problems: Iterable[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("", 0, 0, "", problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        first = self.problems[0] if self.problems else ConfigProblem("", 0, 0, "", "")
        self.path, self.line, self.column, self.key = (
            first.path,
            first.line,
            first.column,
            first.key,
        )
        super().__init__("\n".join(str(p).removeprefix(": ") for p in self.problems))


class SettingsError(ConfigError):
    """The settings file cannot be used."""


class CredentialsError(ConfigError):
    """The phones' secrets file (HA1 digests) cannot be used."""


class WeekViewError(ConfigError, ValueError):
    """A week view cannot be drawn as asked (a bad ISO week, an unknown person)."""


class EdgeError(SwitchError):
    """The Kamailio edge cannot be configured, started or reached."""


class EdgeConfigError(ConfigError, EdgeError):
    """The edge settings are wrong, or Kamailio rejects the rendered configuration
    (then ``output`` holds what ``kamailio -c`` said)."""

    def __init__(self, problems: Iterable[ConfigProblem] | str, *, output: str = "") -> None:
        super().__init__(problems)
        self.output = output


class EdgeStartError(EdgeError):
    """Kamailio did not come up; ``log`` holds the end of its output."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class MediaRelayError(EdgeError):
    """rtpengine (the media relay) did not come up or died; ``log`` holds its last lines."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class EdgeRpcError(EdgeError):
    """A JSON-RPC call to Kamailio failed; ``code`` is its error code (0 when none came back)."""

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class AccessError(SwitchError):
    """People, roles, passwords or tokens."""


class UsersFileError(ConfigError, AccessError):
    """The users file cannot be used."""


class UserError(AccessError):
    """A user command that cannot be done (unknown user, a name taken, a weak password)."""


class UsageError(SwitchError):
    """A command line that cannot be carried out as given (the CLI exits 2 for these)."""
