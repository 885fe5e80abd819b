"""Invitation emails over plain SMTP (stdlib smtplib).

Sent after the invitation has committed: a mail server that is down or refuses the message
costs the invitee an email, never the invitation (its link is in the API answer too).
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from ..settings import BugsSettings

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 5.0


def accept_url(settings: BugsSettings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/invitations/{token}"


def invitation_message(settings: BugsSettings, *, to: str, project_name: str,
                       inviter: str | None, role: str, url: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = f"You are invited to join {project_name} on Bugnet"
    msg["Message-ID"] = make_msgid(domain="bugnet.local")
    who = inviter or "A teammate"
    msg.set_content(
        f"{who} invited you to join the project \"{project_name}\" on Bugnet as {role}.\n\n"
        f"Accept the invitation (sign in with this email address first):\n{url}\n\n"
        f"The link works once and expires in {settings.invitation_ttl_days} days. "
        "If you did not expect this email you can ignore it.\n")
    return msg


def send(settings: BugsSettings, msg: EmailMessage, *, ref: str) -> bool:
    """Deliver `msg`; False (and a log line naming `ref`, not the address) when mail is off or
    the server fails."""
    if not settings.smtp_host:
        return False
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("invitation email not sent", extra={"ref": ref, "error": str(exc)})
        return False
    return True
