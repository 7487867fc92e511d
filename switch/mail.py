"""E-mail to the owner through his own mail server: build the message, send it.

:func:`message_mail` builds a Telefonnotiz as an :class:`email.message.EmailMessage`
(RFC 5322 headers, RFC 2047 encoded-words for umlauts in the subject, a UTF-8
``text/plain`` body; the policy picks quoted-printable or base64); :func:`send` hands
it to the configured server with stdlib :mod:`smtplib` in a thread (the event loop
never waits on a mail server), with STARTTLS (RFC 3207) when asked, and login when a
user is set. Nothing goes anywhere but the one configured server (issue 18: data stays
on own servers).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from switch import i18n
from switch.errors import MailError
from switch.i18n import _


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where the mails of one business go (settings ``smtp:``; the password from a file)."""

    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str | None = None  # From; None: the owner's own address
    cafile: Path | None = None  # a CA for a server with its own certificate
    timeout: float = 10.0


def message_mail(
    message: dict[str, Any], business: str, to: str, sender: str, lang: i18n.Language
) -> EmailMessage:
    """The e-mail of one Telefonnotiz (a row of :mod:`switch.records.messages`)."""
    with i18n.using(lang):
        who = message.get("caller_name") or message.get("number") or _("unknown caller")
        subject = _("Message for {business}: {who}").format(business=business, who=who)
        if message.get("urgency") == "urgent":
            subject = _("URGENT") + " – " + subject
        if message.get("callback"):
            subject += " – " + _("please call back")
        lines = [
            _("Message for {business}").format(business=business),
            "",
            _("Caller: {name}").format(name=message.get("caller_name") or "–"),
            _("Number: {number}").format(number=message.get("number") or "–"),
            _("Urgency: {urgency}").format(urgency=_(str(message.get("urgency") or "normal"))),
            _("Call back: {answer}").format(
                answer=_("yes") if message.get("callback") else _("no")
            ),
            _("Taken by: {who}").format(who=message.get("taken_by") or "–"),
            _("Taken at: {when}").format(
                when=message.get("taken_local") or message.get("taken_at")
            ),
            "",
            _("Concern:"),
            str(message.get("concern") or ""),
            "",
            "-- ",
            _("Rufweiche, your telephone switch"),
        ]
    return _text_mail(subject, sender, to, lines)


def notice_mail(
    kind: str,
    notice: dict[str, Any],
    business: str,
    to: str,
    sender: str,
    lang: i18n.Language,
    wav: bytes | None = None,
) -> EmailMessage:
    """A notice to the owner: a missed call, a voicemail or a dictation (``kind``), with
    the recording attached (``wav``) or linked (``notice["url"]``)."""
    with i18n.using(lang):
        who = notice.get("caller") or _("anonymous")
        titles = {
            "missed": _("Missed call for {business}: {who}"),
            "voicemail": _("Voicemail for {business}: {who}"),
            "dictation": _("Dictation for {business}: {who}"),
        }
        subject = titles[kind].format(business=business, who=who)
        lines = [
            subject,
            "",
            _("Caller: {name}").format(name=who),
            _("Called: {number}").format(number=notice.get("called") or "–"),
            _("Time: {when}").format(when=notice.get("when") or "–"),
        ]
        if notice.get("seconds") is not None:
            lines.append(_("Length: {seconds} s").format(seconds=round(notice["seconds"])))
        if wav is not None:
            lines.append(_("The recording is attached."))
        elif notice.get("url"):
            lines.append(_("Listen: {url}").format(url=notice["url"]))
        lines += ["", "-- ", _("Rufweiche, your telephone switch")]
    mail = _text_mail(subject, sender, to, lines)
    if wav is not None:
        name = str(notice.get("file") or f"{kind}.wav")
        mail.add_attachment(wav, maintype="audio", subtype="wav", filename=name)
    return mail


def _text_mail(subject: str, sender: str, to: str, lines: list[str]) -> EmailMessage:
    """A plain-text mail of the switch: the headers every one carries, ``lines`` as its body."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = to
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    # quoted-printable: 7-bit safe even where a server lacks 8BITMIME (RFC 6152)
    mail.set_content("\n".join(lines) + "\n", charset="utf-8", cte="quoted-printable")
    return mail


def _send_now(server: MailServer, mail: EmailMessage) -> None:
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
            smtp.ehlo()
            if server.starttls:
                context = ssl.create_default_context(
                    cafile=str(server.cafile) if server.cafile else None
                )
                smtp.starttls(context=context)
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailError(
            f"mail server {server.host}:{server.port} did not take the mail: "
            f"{str(exc) or type(exc).__name__}",
            host=server.host,
        ) from exc


async def send(server: MailServer, mail: EmailMessage) -> None:
    """Send ``mail`` through ``server`` (in a thread); :class:`MailError` when it fails."""
    await asyncio.to_thread(_send_now, server, mail)


__all__ = ["MailServer", "message_mail", "notice_mail", "send"]
