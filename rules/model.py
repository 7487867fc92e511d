"""The dial-plan file as pydantic models: what an author may write, validated, frozen.

These models only describe the *shape* of a file. Cross references (a rule naming a person, a
device, a schedule or a caller list) are checked afterwards by :mod:`rules.compile`, which also
turns the models into the compact runtime structures that :func:`rules.decide` walks.

Every mapping forbids unknown keys; the wrap validator on :class:`Spec` rewrites pydantic's
"Extra inputs are not permitted" into "unknown key 'timout', did you mean 'timeout'?".
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from rules.decision import OnFailure
from rules.presence import PresenceState


def _suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


def _rebuilt(error: Any) -> InitErrorDetails:
    if "url" in error:  # one of pydantic's own error types: pass through unchanged
        return error  # type: ignore[no-any-return]
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], error["msg"]),
        loc=error["loc"],
        input=error["input"],
    )


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)

    @model_validator(mode="wrap")
    @classmethod
    def _name_unknown_keys(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in errors):
                raise
            names = sorted(f.alias or n for n, f in cls.model_fields.items())
            rebuilt: list[InitErrorDetails] = []
            for e in errors:
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
                    key = str(e["loc"][0])
                    text = f"unknown key {key!r}{_suggestion(key, names)}"
                    custom = PydanticCustomError("rw_unknown_key", text)
                    rebuilt.append(InitErrorDetails(type=custom, loc=e["loc"], input=e["input"]))
                else:
                    rebuilt.append(_rebuilt(e))
            raise ValidationError.from_exception_data(exc.title, rebuilt) from None


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str | int | float | dict | dt.date) else value


def _duration(value: Any) -> Any:
    """``15``, ``15s``, ``2m``, ``1m30s`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"duration {value!r} is not a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(?:(\d+)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*", value)
        if match and (match[1] or match[2]):
            return int(match[1] or 0) * 60 + float(match[2] or 0)
    raise ValueError(f"duration {value!r} is not like 15s, 2m or 1m30s")


Seconds = Annotated[float, BeforeValidator(_duration), Field(gt=0, le=3600)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Number = Annotated[str, Field(min_length=1, max_length=40)]
# person[.device], or ``queue:<name>`` (issue 19: ``ring: [queue:heimbuero]``, a queue step)
Ref = Annotated[
    str,
    Field(pattern=r"^(queue:)?[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)?$"),
]
Numbers = Annotated[tuple[Number, ...], BeforeValidator(_listify)]
Names = Annotated[tuple[Name, ...], BeforeValidator(_listify)]
States = Annotated[tuple[PresenceState, ...], BeforeValidator(_listify)]


# --- conditions ---------------------------------------------------------------------------------


class CallerNumber(Spec):
    number: Numbers


class CallerPrefix(Spec):
    prefix: Numbers


class CallerList(Spec):
    list: Names


class CallerAnonymous(Spec):
    anonymous: bool


# Union tags start with "=" so that they can never be mistaken for a key of the file when an
# error's loc is traced back to a line (rules.yamlsource.Document.position).


def _key_tag(keys: tuple[str, ...], likeliest: str) -> Callable[[Any], str]:
    """The discriminator of a union written as a word or as a map with one of ``keys``: a
    map without any of them is taken as ``likeliest`` (its errors name the unknown key)."""

    def tag(value: Any) -> str:
        if isinstance(value, dict):
            return "=" + next((key for key in keys if key in value), likeliest)
        return "=word"

    return tag


_caller_tag = _key_tag(("number", "prefix", "list", "anonymous"), "list")


CallerForm = Annotated[
    Annotated[str, Tag("=word")]
    | Annotated[CallerNumber, Tag("=number")]
    | Annotated[CallerPrefix, Tag("=prefix")]
    | Annotated[CallerList, Tag("=list")]
    | Annotated[CallerAnonymous, Tag("=anonymous")],
    Discriminator(_caller_tag),
]
"""``caller: vip`` (a list), ``caller: anonymous``, ``caller: "+49 171 5550100"`` (a number),
``{number: ...}``, ``{prefix: ...}``, ``{list: ...}``, ``{anonymous: true|false}``."""


class PresenceNot(Spec):
    not_: States = Field(alias="not")


def _presence_tag(value: Any) -> str:
    return "=not" if isinstance(value, dict) else "=states"


PresenceForm = Annotated[
    Annotated[States, Tag("=states")] | Annotated[PresenceNot, Tag("=not")],
    Discriminator(_presence_tag),
]


def _schedule_tag(value: Any) -> str:
    return "=inline" if isinstance(value, dict) else "=names"


class When(Spec):
    """All given conditions must hold (an empty ``when`` always holds)."""

    schedule: (
        Annotated[
            Annotated[Names, Tag("=names")] | Annotated[ScheduleSpec, Tag("=inline")],
            Discriminator(_schedule_tag),
        ]
        | None
    ) = None
    weekday: str | None = None
    holiday: bool | None = None
    closed: bool | None = None
    vacation: bool | None = None
    caller: Annotated[tuple[CallerForm, ...], BeforeValidator(_listify)] | None = None
    called: Numbers | None = None
    extension: bool | None = None
    presence: dict[str, PresenceForm] | None = None
    all_: Annotated[tuple[When, ...], Field(min_length=1)] | None = Field(default=None, alias="all")
    any_: Annotated[tuple[When, ...], Field(min_length=1)] | None = Field(default=None, alias="any")
    not_: When | None = Field(default=None, alias="not")


# --- schedules ----------------------------------------------------------------------------------


class ScheduleSpec(Spec):
    """``{mon-thu: "07:00-12:00, 13:00-16:30", fri: "07:00-13:00", on_closed_days: false}``."""

    days: dict[str, tuple[str, ...]]
    on_closed_days: bool = False

    @model_validator(mode="before")
    @classmethod
    def _split_days(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        days = {k: _listify(v) for k, v in data.items() if k != "on_closed_days"}
        rest = {k: v for k, v in data.items() if k == "on_closed_days"}
        return {"days": days, **rest}


# --- actions ------------------------------------------------------------------------------------


class Ring(Spec):
    ring: Annotated[tuple[Ref, ...], BeforeValidator(_listify)]
    timeout: Seconds = 20.0
    parallel: bool | None = None
    confirm: bool = False
    on_busy: OnFailure = OnFailure.NEXT
    on_no_answer: OnFailure = OnFailure.NEXT
    on_unreachable: OnFailure = OnFailure.NEXT

    @field_validator("ring")
    @classmethod
    def _some_target(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("ring needs at least one target")
        return value


class RejectDetail(Spec):
    status: Annotated[int, Field(ge=400, le=699)] = 603
    reason: Text | None = None


def _reject_form(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"status": value}
    if value is None:
        return {}
    return value


class Reject(Spec):
    reject: Annotated[RejectDetail, BeforeValidator(_reject_form)]


class Announcement(Spec):
    announcement: Text


class QueueStep(Spec):
    """``{queue: heimbuero}``: wait in a queue of the secretarial service (issue 19). The queue
    itself is defined once, in the settings (docs/queues.md); when it gives up on the caller
    (maximum wait, queue full, nobody logged in) the rule's next steps or final action run."""

    queue: Name


_step_tag = _key_tag(("ring", "reject", "announcement", "queue"), "ring")


StepForm = Annotated[
    Annotated[Literal["reject", "voicemail"], Tag("=word")]
    | Annotated[Ring, Tag("=ring")]
    | Annotated[Reject, Tag("=reject")]
    | Annotated[Announcement, Tag("=announcement")]
    | Annotated[QueueStep, Tag("=queue")],
    Discriminator(_step_tag),
]


class RuleSpec(Spec):
    name: Text
    when: When | None = None
    then: Annotated[tuple[StepForm, ...], BeforeValidator(_listify), Field(min_length=1)]


# --- people and the plan ------------------------------------------------------------------------


class CurrentDevice(Spec):
    when: When | None = None
    device: Name


class HomeOffice(Spec):
    days: str
    device: Name = "home"


class PersonSpec(Spec):
    name: Text | None = None
    devices: dict[Name, Number] = Field(min_length=1)
    current: Annotated[tuple[CurrentDevice, ...], BeforeValidator(_listify)] | Name | None = None
    home_office: HomeOffice | str | None = None


class ServiceSpec(Spec):
    name: Text | None = None
    devices: dict[Name, Number] = Field(min_length=1)


class HolidaySpec(Spec):
    country: Annotated[str, Field(min_length=2, max_length=3)] = "DE"
    subdivision: str | None = None
    # the package's categories (public, catholic, school, …); None: public holidays only
    categories: Names | None = None


class Vacation(Spec):
    from_: dt.date = Field(alias="from")
    to: dt.date
    name: Text | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Vacation:
        if self.to < self.from_:
            raise ValueError(f"vacation ends ({self.to}) before it starts ({self.from_})")
        return self


class ExtensionSpec(Spec):
    person: Name
    rules: tuple[RuleSpec, ...] = ()


def _extension_form(value: Any) -> Any:
    return {"person": value} if isinstance(value, str) else value


Extension = Annotated[ExtensionSpec, BeforeValidator(_extension_form)]


class MediaSpec(Spec):
    """The plan's ``media:`` keys (switch/worker/media.py): prompts, voicemail, confirmation."""

    voice: Literal["de", "en"] = "de"  # espeak-ng voice of spoken announcements
    voicemail_max: Seconds = 120.0  # longest voicemail message
    confirm_timeout: Seconds = 10.0  # from the callee's answer to its "1" (confirm: true)
    whisper: bool = False  # the secretarial service hears the business name first
    welcome: Text | None = None  # played to every caller as early media before ringing
    # The dictation box (issue 7): a person dials this from his own phone and dictates.
    dictation_code: Annotated[str, Field(pattern=r"^[*#0-9]{2,8}$")] = "*50"
    dictation_max: Seconds = 600.0  # longest dictation


class PrivacySpec(Spec):
    """The plan's ``privacy:`` keys: what the call records keep of the caller."""

    # full: the number as received; masked: +491********78; none: not stored at all.
    store_caller: Literal["full", "masked", "none"] = "full"


CallClass = Literal["internal", "local", "national", "mobile", "international", "premium"]


class OutboundSpec(Spec):
    """The plan's ``outbound:`` keys (switch/call/outbound.py): who may call out, and how.

    Classes: internal, local, national, mobile, international, premium. Emergency numbers
    (110, 112) need no class: they are always allowed.
    """

    present: Number | None = None  # the number callees see; default: the plan's first
    business_code: Annotated[str, Field(pattern=r"^[0-9]{1,4}$")] | None = None  # *8<code>#
    allow: Annotated[tuple[CallClass, ...], BeforeValidator(_listify)] = (
        "internal",
        "local",
        "national",
        "mobile",
    )
    people: dict[Name, Annotated[tuple[CallClass, ...], BeforeValidator(_listify)]] = {}
    direct: dict[Name, Number] = {}  # a person's direct extension in the number block
    calls_per_hour: Annotated[int, Field(ge=1, le=10000)] = 30
    international_minutes_per_day: Annotated[float, Field(ge=0, le=10000)] = 60.0
    ring_timeout: Seconds = 60.0


class PlanSpec(Spec):
    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    name: Text
    announce_as: Text | None = None
    timezone: str = "Europe/Berlin"
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "DE"
    holidays: HolidaySpec | None = None
    numbers: Numbers = ()
    people: dict[Name, PersonSpec] = {}
    service: dict[Name, ServiceSpec] = {}
    schedules: dict[Name, ScheduleSpec] = {}
    closed_days: Annotated[tuple[dt.date, ...], BeforeValidator(_listify)] = ()
    vacations: tuple[Vacation, ...] = ()
    caller_lists: dict[Name, Numbers] = {}
    feature_codes: dict[Annotated[str, Field(pattern=r"^[*#0-9]{2,8}$")], PresenceState] | None = (
        None
    )
    rules: tuple[RuleSpec, ...] = ()
    extensions: dict[str, Extension] = {}
    media: MediaSpec = MediaSpec()
    privacy: PrivacySpec = PrivacySpec()
    outbound: OutboundSpec = OutboundSpec()
    # Issue 18: the language of explain/check, e-mails and pages for this business (None:
    # German, or what the operator asks for), and what the assistant's console shows.
    language: Literal["de", "en"] | None = None
    greeting: Text | None = None  # said by the assistant: "Tischlerei Müller, guten Tag"
    instructions: str | None = None  # Markdown for the assistant, rendered safely
    owner_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


When.model_rebuild()
