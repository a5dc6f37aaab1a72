"""Message texts from the Jinja2 templates in ``templates/``: one per trigger and channel.

``<trigger>.sms.j2`` is the SMS text (fitted to GSM-7 and the segment limit by
``domain.fit_sms``); ``<trigger>.email.j2`` defines the blocks ``subject`` and ``body``,
as do the office heads' e-mails ``office_warning.email.j2`` and ``digest.email.j2``.
Templates are plain text (no HTML escaping) and strict: a name they use that the
context lacks is an error, never a blank. ``*.html.j2`` templates (the digest's HTML
alternative) are rendered with HTML escaping of every value.
"""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from services.notify.domain import (
    FACT_NAMES,
    Addressee,
    Draft,
    MessageChannel,
    Notice,
    Trigger,
    fit_sms,
    message_key,
)


class Renderer:
    """Renders notices into drafts; templates are loaded once per process (they ship with
    the package: no file is looked at again, ``auto_reload`` is off)."""

    def __init__(self, *, sms_max_segments: int) -> None:
        self.sms_max_segments = sms_max_segments
        self._env = Environment(
            loader=PackageLoader("services.notify", "templates"),
            autoescape=False,
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._html_env = Environment(
            loader=PackageLoader("services.notify", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            auto_reload=False,
        )

    def template(self, trigger: Trigger, channel: MessageChannel) -> Template:
        """The template of one trigger on one channel."""
        return self._env.get_template(f"{trigger.value}.{channel.value}.j2")

    def sms(self, trigger: Trigger, context: Mapping[str, str]) -> str:
        """The SMS text: no diacritics, GSM-7, within ``sms_max_segments``."""
        text = self.template(trigger, MessageChannel.SMS).render(context)
        return fit_sms(text, self.sms_max_segments)

    def email(self, trigger: Trigger, context: Mapping[str, str]) -> tuple[str, str]:
        """The e-mail's subject (one line) and body."""
        return self._email(self.template(trigger, MessageChannel.EMAIL), context)

    def office_warning(self, context: Mapping[str, str]) -> tuple[str, str]:
        """The office head's warning that a dossier needs the apology letter: subject, body."""
        return self._email(self._env.get_template("office_warning.email.j2"), context)

    def digest(self, context: Mapping[str, object]) -> tuple[str, str, str]:
        """The office heads' digest: subject (one line), plain-text body and HTML body."""
        subject, body = self._email(self._env.get_template("digest.email.j2"), context)
        html = self._html_env.get_template("digest.html.j2").render(context)
        return subject, body, html

    @staticmethod
    def _email(template: Template, context: Mapping[str, object]) -> tuple[str, str]:
        ctx = template.new_context(dict(context))
        subject = " ".join("".join(template.blocks["subject"](ctx)).split())
        body = "".join(template.blocks["body"](ctx)).strip() + "\n"
        return subject, body

    def drafts(self, notice: Notice, to: Addressee) -> list[Draft]:
        """One draft per contact the applicant gave (SMS to a phone, e-mail to an address)."""
        context = {name: "" for name in FACT_NAMES}
        context.update(notice.facts)
        context.update(
            code=notice.dossier_code,
            name=to.name,
            procedure_code=to.procedure_code,
            unit=to.receiving_unit,
        )
        drafts: list[Draft] = []
        if to.phone:
            drafts.append(
                self._draft(
                    notice, MessageChannel.SMS, to.phone, None, self.sms(notice.trigger, context)
                )
            )
        if to.email:
            subject, body = self.email(notice.trigger, context)
            drafts.append(self._draft(notice, MessageChannel.EMAIL, to.email, subject, body))
        return drafts

    @staticmethod
    def _draft(
        notice: Notice, channel: MessageChannel, recipient: str, subject: str | None, body: str
    ) -> Draft:
        return Draft(
            key=message_key(notice.dossier_code, notice.trigger, channel, notice.occurrence),
            dossier_code=notice.dossier_code,
            trigger=notice.trigger,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
        )
