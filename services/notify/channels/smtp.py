"""E-mail over SMTP (aiosmtplib).

Every e-mail carries a ``Message-ID`` derived from its key, so a mail client or an
archive can recognise a repeat; SMTP servers do not de-duplicate on it, so this sink is
not ``resend_safe``: a send interrupted by a crash is not repeated.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from services.notify.channels.base import DeliveryError, Outgoing
from services.notify.settings import NotifySettings

_TEMPORARY_REPLY = range(400, 500)


def message_id(key: str, sender: str) -> str:
    """The ``Message-ID`` of a key: the same on every attempt."""
    domain = sender.rsplit("@", 1)[-1] or "motcua"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class SmtpSink:
    """Sends each message as one UTF-8 e-mail: plain text, with an HTML alternative when
    the message has one."""

    name = "smtp"
    resend_safe = False
    reaches_citizen = True

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def compose(self, message: Outgoing) -> EmailMessage:
        """The e-mail of a message."""
        mail = EmailMessage()
        mail["From"] = self.settings.smtp_sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Message-ID"] = message_id(message.key, self.settings.smtp_sender)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["X-Motcua-Key"] = message.key
        mail.set_content(message.body)
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html")
        return mail

    async def send(self, message: Outgoing) -> str | None:
        """Hand the e-mail to the server; 4xx and connection trouble are temporary."""
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                self.compose(message),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=password,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            temporary = all(code in _TEMPORARY_REPLY for code in codes)
            raise DeliveryError(f"smtp recipient refused {codes}", temporary=temporary) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"smtp reply {exc.code}", temporary=exc.code in _TEMPORARY_REPLY
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp {type(exc).__name__}", temporary=True) from exc
        return message_id(message.key, s.smtp_sender)
