"""Notification emails: what they say, and the mailer that sends the queue over SMTP.

Emails are staged as `outgoing_emails` rows in the transaction that decided to send them
(`service.notify`) and sent by the worker's mailer after the commit, so a slow or unreachable
mail server never holds a transaction or loses a notification. The mailer claims due rows
(moving their `next_attempt_at` past a lease, so a crashed worker's claims come back), sends
them over one SMTP connection, and records each outcome: `sent`; `failed` for a permanent
refusal (5xx) or after `mail_max_attempts`; otherwise `pending` again with exponential
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bugnet_common.bus.events import utcnow
from bugnet_common.db import Database

from ..models import ProjectRef, UserRef
from ..settings import IntegrationsSettings
from .models import OutgoingEmail

if TYPE_CHECKING:
    from .service import Message

log = logging.getLogger(__name__)

EMAILS = OutgoingEmail.__table__  # type: ignore[attr-defined]
BATCH = 20
LEASE_SECONDS = 300.0
BACKOFF_MAX_SECONDS = 3600.0


def compose(settings: IntegrationsSettings, *, project: ProjectRef, message: Message,
            user: UserRef) -> tuple[str, str]:
    """(subject, plain-text body) of the email telling `user` about `message`."""
    subject = f"[{project.name or project.slug}] {message.title}"
    greeting = f"Hi {user.display_name}," if user.display_name else "Hi,"
    lines = [greeting, "", message.body]
    if message.url:
        lines += ["", message.url]
    prefs = settings.public_base_url.rstrip("/") + "/api/notifications/preferences"
    lines += ["", "--", f"You get this email because of your Bugnet notification preferences "
                        f"for {project.name or project.slug}. Change them at {prefs}."]
    return subject, "\n".join(lines) + "\n"


def build(settings: IntegrationsSettings, row: Any) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Message-ID"] = make_msgid(domain="bugnet.local")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Bugnet-Event"] = row.event
    msg.set_content(row.body)
    return msg


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


class Mailer:
    """Sends due `outgoing_emails` (a worker task; `run_once` is one pass)."""

    def __init__(self, *, settings: IntegrationsSettings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def task(self, _worker: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("mailer pass failed")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.mail_poll_seconds)

    def run_once(self) -> int:
        """Claim due emails and try each once; how many were tried."""
        if not self.settings.smtp_host:
            return 0
        rows = self._claim()
        if rows:
            self._send(rows)
        return len(rows)

    def _claim(self) -> list[Any]:
        now = utcnow()
        due = (sa.select(EMAILS.c.id)
               .where(EMAILS.c.status == "pending", EMAILS.c.next_attempt_at <= now)
               .order_by(EMAILS.c.next_attempt_at).limit(BATCH)
               .with_for_update(skip_locked=True))
        with self.db.begin() as session:
            return list(session.execute(
                sa.update(EMAILS).where(EMAILS.c.id.in_(due.scalar_subquery()))
                .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
                .returning(EMAILS.c.id, EMAILS.c.to_address, EMAILS.c.subject, EMAILS.c.body,
                           EMAILS.c.event, EMAILS.c.attempts)).all())

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        assert s.smtp_host
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password is not None:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, rows: list[Any]) -> None:
        smtp: smtplib.SMTP | None = None
        for i, row in enumerate(rows):
            if smtp is None:
                try:
                    smtp = self._connect()
                except (OSError, smtplib.SMTPException) as exc:
                    # The server is unreachable: everything left waits for its backoff.
                    for rest in rows[i:]:
                        self._record(rest, exc)
                    return
            try:
                smtp.send_message(build(self.settings, row))
            except (OSError, smtplib.SMTPException) as exc:
                self._record(row, exc)
                if isinstance(exc, OSError | smtplib.SMTPServerDisconnected):
                    smtp.close()
                    smtp = None
            else:
                self._record(row, None)
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _record(self, row: Any, exc: Exception | None) -> None:
        now = utcnow()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts}
        if exc is None:
            values.update(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
        else:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            values["last_error"] = error
            if _permanent(exc) or attempts >= self.settings.mail_max_attempts:
                values.update(status="failed", next_attempt_at=None)
            else:
                delay = min(self.settings.mail_backoff_base_seconds * 2 ** (attempts - 1),
                            BACKOFF_MAX_SECONDS)
                values["next_attempt_at"] = now + timedelta(seconds=delay)
            log.warning("notification email not sent", extra={
                "email_id": row.id, "attempts": attempts, "final": "status" in values,
                "error": error})
        with self.db.begin() as session:
            session.execute(sa.update(EMAILS).where(EMAILS.c.id == row.id,
                                                    EMAILS.c.status == "pending").values(**values))
