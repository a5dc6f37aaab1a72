"""Notify's wiring: the process that the server runs (``build``) and the use cases the
command line runs (``standalone`` then ``prepare``), built the same way.

The server consumes the lifecycle, contact and SLA topics (messages, then the report
projection, in one inbox transaction per batch) and follows the keys intake issues (its
API) and the procedure catalogue routing publishes (levels and names in its reports and
messages). The command line writes notify's database directly; a running notify picks
its changes up by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.app import Notifier
from services.notify.catalogue import CatalogueInUse
from services.notify.channels import FailoverSink, FileSink, HttpSmsSink, Sink, SmtpSink
from services.notify.digest import Digests
from services.notify.reports import TABLES as REPORT_TABLES
from services.notify.reports import ReportProjection, Reports
from services.notify.settings import NotifySettings
from shared.catalogue_sync import TABLES as CATALOGUE_TABLES
from shared.catalogue_sync import following_catalogue
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.events import Envelope
from shared.inbox import Apply
from shared.keys_sync import TABLES as KEY_TABLES
from shared.keys_sync import following_keys
from shared.migrations import ensure_at_head
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.signing import dev_secret
from shared.topics import API_KEYS, CATALOGUE, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE, DOSSIER_SLA

SERVICE: ServiceName = "notify"

OPT_OUT_SECRET_FILE = "notify-opt-out.secret"
"""The generated development key of the opt-out fingerprints, under ``var_dir``."""


@dataclass(frozen=True, slots=True)
class NotifyProcess:
    """Notify's runtime (broker, database) and its use cases: messages (``notifier``),
    the reports and the dashboard (``reports``), office heads and digests (``digests``)."""

    runtime: ServiceRuntime
    notifier: Notifier
    reports: Reports
    digests: Digests


def opt_out_key(settings: Settings, notify: NotifySettings) -> bytes:
    """The key of the contact fingerprints: ``MOTCUA_NOTIFY_OPT_OUT_SECRET``, else (on a
    PLAINTEXT broker: development) the one generated once in
    ``<var_dir>/notify-opt-out.secret``, mode 600. A secured deployment must set it, so
    that every notify process, and the command line, fingerprint alike."""
    if notify.opt_out_secret is not None:
        return notify.opt_out_secret.get_secret_value().encode()
    if settings.kafka_security_protocol != "PLAINTEXT":
        msg = (
            "MOTCUA_NOTIFY_OPT_OUT_SECRET is not set: with a secured broker "
            f"({settings.kafka_security_protocol}) notify refuses to start without the key of "
            "its opt-out fingerprints"
        )
        raise ValueError(msg)
    return dev_secret(settings.var_dir, OPT_OUT_SECRET_FILE).encode()


def build_sinks(settings: Settings, notify: NotifySettings) -> dict[str, FailoverSink]:
    """The configured sinks per channel, in failover order (one instance per sink, shared
    by the channels that name it)."""
    made: dict[str, Sink] = {}

    def sink(name: str) -> Sink:
        if name not in made:
            if name == "file":
                made[name] = FileSink(settings.var_dir / "messages")
            elif name == "smtp":
                made[name] = SmtpSink(notify)
            elif name == "http":
                made[name] = HttpSmsSink(notify)
            else:
                msg = f"unknown sink {name!r}: use file, smtp or http"
                raise ValueError(msg)
        return made[name]

    return {
        domain.MessageChannel.SMS.value: FailoverSink([sink(n) for n in notify.sms_sink_names]),
        domain.MessageChannel.EMAIL.value: FailoverSink([sink(n) for n in notify.email_sink_names]),
    }


def _use_cases(
    settings: Settings,
    notify: NotifySettings,
    channels: Mapping[str, FailoverSink] | None,
    clock: Clock,
) -> NotifyProcess:
    """Runtime and use cases, nothing subscribed: what the server and the command line
    share. One ``CatalogueInUse`` serves messages, reports and digests alike."""
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        tables=[*store.TABLES, *REPORT_TABLES, *KEY_TABLES, *CATALOGUE_TABLES],
        publishes=[],
    )
    catalogue = CatalogueInUse()
    notifier = Notifier(
        runtime,
        channels or build_sinks(settings, notify),
        notify,
        opt_out_key=opt_out_key(settings, notify),
        catalogue=catalogue,
        clock=clock,
    )
    reports = Reports(runtime, clock=clock, catalogue=catalogue)
    return NotifyProcess(runtime, notifier, reports, Digests(notifier))


def build(
    settings: Settings,
    notify: NotifySettings | None = None,
    *,
    channels: Mapping[str, FailoverSink] | None = None,
    clock: Clock = utc_now,
) -> NotifyProcess:
    """Notify's runtime, use cases and subscribers (see the module); sinks from
    ``MOTCUA_NOTIFY_*`` unless ``channels`` are given. Its use cases read "now" from
    ``clock``."""
    process = _use_cases(settings, notify or NotifySettings(), channels, clock)
    notifier = process.notifier
    subscribe(
        process.runtime,
        consume_apply(notifier),
        DOSSIER_LIFECYCLE,
        DOSSIER_CONTACTS,
        DOSSIER_SLA,
        after_commit=notifier.wake,
    )
    follow(
        process.runtime,
        following_keys(settings, SERVICE, following_catalogue(notifier.catalogue.use)),
        API_KEYS,
        CATALOGUE,
    )
    return process


def consume_apply(notifier: Notifier) -> Apply:
    """What the consumer runs on each batch of fresh lifecycle, contact and SLA events, in
    its inbox transaction: the messages (``Notifier.apply``), then the report projection
    over the same catalogue."""
    projection = ReportProjection(notifier.catalogue)

    async def apply(session: AsyncSession, events: Sequence[Envelope]) -> None:
        await notifier.apply(session, events)
        await projection.apply(session, events)

    return apply


def standalone(
    settings: Settings, notify: NotifySettings | None = None, *, clock: Clock = utc_now
) -> NotifyProcess:
    """Notify's use cases over its database, for the command line: nothing subscribed,
    and the runtime is never started (notify publishes nothing; messages it queues wait
    for a running notify's dispatcher). Call ``prepare`` before use."""
    return _use_cases(settings, notify or NotifySettings(), None, clock)


async def prepare(process: NotifyProcess, settings: Settings) -> None:
    """Bring notify's database to the newest migration (or refuse one that is not, per
    the settings); read back the catalogue versions it kept."""
    db = process.runtime.db
    await ensure_at_head(db, SERVICE, may_upgrade=settings.db_upgrade_at_start)
    async with db.sessions() as session:
        await process.notifier.catalogue.restore(session)
