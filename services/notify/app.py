"""Notify's use cases: store each message under its key, then a dispatcher sends it.

Exactly once per key, with any number of dispatchers (in one process or many, on one
database), and how a crash is handled:

- The message row is inserted (``queued``) in the inbox transaction of the event that
  asked for it; a repeated event finds the key taken and adds nothing.
- A dispatcher round claims due rows (``queued`` → ``sending`` with a claim id of the
  round's own and ``claimed_at``, one committed ``UPDATE ... WHERE status = 'queued'``),
  so two dispatchers never both take a row.
- The claim is a lease of ``sending_lease_seconds``, renewed while the round runs: every
  third of the lease the round sets ``claimed_at`` of its rows still ``sending`` to now,
  and before handing a row to a sink it checks that row (and the next ones of the same
  recipient's queue, renewing their lease with one statement) unless a check renewed it
  less than a third of a lease ago: a row so renewed cannot be reconciled by another
  dispatcher for a whole lease. However slow the sinks and however long the round, only
  a dispatcher that stopped (crashed, killed, cut off from the database for a whole
  lease) lets its lease lapse.
- Every statement a dispatcher runs on the rows it claimed is guarded by
  ``WHERE claim = <mine>``: the renewal, the check right before a send (the row must
  still be ``sending`` under my claim, or it is not sent), the record of the outcome and
  the release of unsent rows. A dispatcher whose lease lapsed and whose rows another one
  has reconciled (and perhaps claimed again) therefore neither sends them nor overwrites
  what the other decided; it counts the lost claim
  (``motcua_notifications_claim_lost_total``) and logs the message key (never a
  recipient or a text).
- Each outcome is recorded right after its send, together with the outcomes that came
  while the previous record was being written (``coalesce``: group commit, one small
  transaction of three statements whatever the number), so a crash later in the round
  loses no outcome already recorded; a recipient's next send does not wait for the record.
- A round's sends go out in parallel, at most ``send_concurrency`` at once per channel,
  so per sink (the SMTP server, the SMS gateway; only the development file sink may serve
  both channels). Messages to one recipient on one channel go one after another in the
  order they fell due (``next_attempt_at``, then ``created_at``); no order holds between
  recipients (a round used to go out whole in due order), nor across rounds (a retried
  message goes after later ones).
- Any exception from a sink is a failure of that message only: a ``DeliveryError`` says
  whether it is temporary; anything else (an ``OSError``, a bug in a sink) is temporary.
  A failed message is queued for a retry or failed by the rules below, never left
  ``sending``. A database error on one message (the check or the record) does not stop
  the others; the round raises it once they are done, and that row is released (not
  sent yet) or settled by its lease (sent, outcome not recorded).
- A round that ends early (cancelled at shutdown, a database error) puts the rows it
  never handed to a sink back to ``queued`` (best effort: if even that fails, the lease
  settles them).
- A crash after the claim leaves rows ``sending``. Once their lease has lapsed,
  reconciliation decides: on a channel whose sinks are ``resend_safe`` (the SMS gateway
  de-duplicates on the key we send as its reference id; the file sink rewrites one file)
  the row is queued again and resent under the same key; on SMTP, which cannot
  de-duplicate, it becomes ``unknown`` and is not resent: at most one e-mail, never two.
- Temporary failures are retried with exponential backoff up to ``max_attempts``,
  then ``failed`` with the reason; permanent ones fail at once.
- The gateway's delivery report is taken while the message is ``sending`` or ``sent``
  (it may overtake the record of the send) and wins over the send's own outcome,
  whichever is recorded first (see ``dispatch.Dispatcher._record``).
- SMS is held during quiet hours (default 21:00–07:00 Vietnam time) and sent after,
  unless the SMS channel is only the development file sink, which rings no phone.
- A lateness message (the citizen's overdue notice, the office head's warning) still
  ``queued`` when the dossier's processing ends (result ready, refused, stopped,
  withdrawn) becomes ``superseded`` in that event's inbox transaction: it is never sent.

Where: ``dispatch`` (``Dispatcher``: claim, lease, send, record, reconcile, delivery
reports), ``notices`` (``Notices``: contacts, queued and waiting notices, supersession),
``office`` (the office heads' warnings), ``store`` (the tables, and every statement run on
them, with the guards above), ``catalogue`` (the procedure catalogue notify follows).
``Notifier`` here puts them together with opt-outs, toggles, retention and the queries;
``process`` builds it for the server and for the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.catalogue import CatalogueInUse
from services.notify.channels import FailoverSink
from services.notify.dispatch import Dispatcher
from services.notify.notices import Notices, opt_out_targets
from services.notify.render import Renderer
from services.notify.settings import NotifySettings
from shared.clock import Clock, utc_now
from shared.events import Envelope
from shared.service import ServiceRuntime, every

log = logging.getLogger(__name__)


class Notifier:
    """Notify's use cases: queue messages from events, dispatch them, answer queries."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        channels: Mapping[str, FailoverSink],
        settings: NotifySettings,
        *,
        opt_out_key: bytes,
        catalogue: CatalogueInUse | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.runtime = runtime
        self.channels = dict(channels)
        self.settings = settings
        self.clock = clock
        self.catalogue = catalogue or CatalogueInUse()
        self.renderer = Renderer(sms_max_segments=settings.sms_max_segments)
        self.opt_out_key = opt_out_key
        self.dispatcher = Dispatcher(runtime.db, self.channels, settings, clock=clock)
        self.notices = Notices(
            runtime.db, self.renderer, self.wake, opt_out_key, catalogue=self.catalogue, clock=clock
        )

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Store contacts and queue the messages events ask for, inside the inbox
        transaction (``Notices.apply``), with the catalogue kept before a restart read
        back first (``CatalogueInUse.restore``)."""
        await self.catalogue.restore(session)
        await self.notices.apply(session, events)

    def wake(self) -> None:
        """Let the dispatcher look for due messages now (after queueing outside ``apply``)."""
        self.dispatcher.wake()

    async def dispatch_forever(self) -> None:
        """Send due messages until cancelled."""
        await self.dispatcher.dispatch_forever()

    async def dispatch_round(self) -> int:
        """One dispatcher round; return how many messages were claimed
        (``Dispatcher.dispatch_round``)."""
        return await self.dispatcher.dispatch_round()

    async def delivery_report(self, key: str, delivered: bool, reason: str | None) -> bool:
        """Apply a gateway's delivery report; ``False`` if no message with that key is
        being sent or was sent (``Dispatcher.delivery_report``)."""
        return await self.dispatcher.delivery_report(key, delivered, reason)

    async def release_waiting(self) -> int:
        """Queue the notices still waiting whose contact has come; return how many
        (``Notices.release_waiting``)."""
        return await self.notices.release_waiting()

    async def opt_out(self, *, dossier: str | None, contact: str | None) -> int:
        """Record an opt-out and suppress the matching messages to citizens still queued
        (an office head's warning about the dossier stays); return how many were
        suppressed. The contact is stored only as its fingerprint."""
        now = self.clock()
        targets = self._opt_out_targets(dossier, contact)
        async with self.runtime.db.transaction() as session:
            await store.add_opt_outs(session, targets, now)
            queued = await store.queued_to_citizens(session)
            hit = [m.key for m in queued if opt_out_targets(m, self.opt_out_key) & set(targets)]
            if hit:
                await store.suppress(session, hit)
            return len(hit)

    def _opt_out_targets(self, dossier: str | None, contact: str | None) -> list[str]:
        """What an opt-out (or its undo) names, as stored: the dossier, the contact's
        keyed fingerprint."""
        targets = []
        if dossier:
            targets.append(store.dossier_target(dossier))
        if contact:
            targets.append(
                store.contact_target(domain.contact_fingerprint(contact, self.opt_out_key))
            )
        return targets

    async def undo_opt_out(self, *, dossier: str | None, contact: str | None) -> int:
        """Withdraw an opt-out (the citizen wants messages again); return how many targets
        were removed (0: none was recorded). Messages already suppressed stay suppressed:
        they were due then, and may no longer be true; later ones are sent."""
        targets = self._opt_out_targets(dossier, contact)
        async with self.runtime.db.transaction() as session:
            return await store.delete_opt_outs(session, targets)

    async def set_toggle(
        self, trigger: domain.Trigger, enabled: bool, *, procedure: str, unit: str
    ) -> None:
        """Switch a trigger on or off for a procedure and unit (``*``: any)."""
        async with self.runtime.db.transaction() as session:
            await store.put_toggle(session, trigger.value, enabled, procedure=procedure, unit=unit)

    async def toggles(self) -> domain.Toggles:
        """Every toggle set."""
        async with self.runtime.db.sessions() as session:
            return await store.load_toggles(session)

    async def purge_expired(self) -> int:
        """Delete the personal data kept past ``message_retention_days``; return how many
        messages were purged.

        - A message that reached its end (``store.FINAL``) more than that after it was
          created loses its recipient, subject and text (and an e-mail's HTML). The row,
          its status and its times stay: the delivery history and the reports need no
          personal data. A message still queued or being sent keeps what it needs to be
          sent, however old.
        - A dossier's addressee (name, phone, e-mail) is deleted that long after its
          processing ended (``ended_at``); a dossier still in process keeps it.
        - A notice that waited that long for a contact that never came is deleted.
        """
        cutoff = self.clock() - timedelta(days=self.settings.message_retention_days)
        async with self.runtime.db.transaction() as session:
            purged = await store.purge_messages(session, cutoff)
            addressees = await store.delete_ended_addressees(session, cutoff)
            waiting = await store.delete_waiting_before(session, cutoff)
        if purged or addressees or waiting:
            log.info(
                "retention: purged %d message(s), deleted %d addressee(s) and %d notice(s) "
                "that waited for a contact",
                purged,
                addressees,
                waiting,
            )
        return purged

    async def release_waiting_forever(self) -> None:
        """Release waiting notices every ``waiting_check_seconds``."""

        async def release() -> None:
            await self.release_waiting()

        await every(self.settings.waiting_check_seconds, release, "waiting notices")

    async def purge_forever(self) -> None:
        """Purge messages past their retention every ``retention_check_seconds``."""

        async def purge() -> None:
            await self.purge_expired()

        await every(self.settings.retention_check_seconds, purge, "message retention")

    async def receiving_unit(self, code: str) -> str | None:
        """The unit that received the dossier, as its ``dossier.contact`` said (``None``:
        notify has not heard of it, or its contact is past retention)."""
        async with self.runtime.db.sessions() as session:
            row = await store.addressee(session, code)
            return None if row is None else row.receiving_unit

    async def is_applicant_contact(self, code: str, contact: str) -> bool:
        """Whether ``contact`` is the phone or e-mail of the dossier's applicant."""
        async with self.runtime.db.sessions() as session:
            row = await store.addressee(session, code)
        if row is None:
            return False
        wanted = domain.contact_fingerprint(contact, self.opt_out_key)
        return any(
            domain.contact_fingerprint(known, self.opt_out_key) == wanted
            for known in (row.phone, row.email)
            if known
        )

    async def for_dossier(self, code: str) -> list[store.Message]:
        """Messages of one dossier, oldest first."""
        async with self.runtime.db.sessions() as session:
            return await store.messages_of(session, code)
