"""Intake's wiring: the runtime (database, broker, outbox relay) and the use cases.

Every use case writes the dossier and its event in one transaction; the relay
publishes the event afterwards. Nothing here waits for Kafka.
"""

from __future__ import annotations

from prometheus_client import Counter
from pydantic import BaseModel

from services.intake import domain, store
from shared.calendar import default_calendar
from shared.catalogue import Catalogue, seed_catalogue
from shared.clock import Clock, utc_now
from shared.events import (
    Channel,
    Contact,
    DossierReceived,
    DossierSubmitted,
    Envelope,
    TimeLimit,
)
from shared.outbox import enqueue
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.topics import DOSSIER_LIFECYCLE

SERVICE: ServiceName = "intake"

DOSSIERS_RECEIVED = Counter(
    "motcua_dossiers_received_total", "Dossiers handed in, by channel.", ["channel"]
)


class CatalogueError(ValueError):
    """The dossier does not fit the catalogue; ``errors`` names the fields."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class NewDossier(BaseModel):
    """What the API validated (formats); the use case checks it against the catalogue."""

    procedure_code: str
    channel: Channel
    receiving_unit: str
    applicant: Contact
    applicant_id_number: str | None
    documents: list[str]


class Intake:
    """Intake's use cases over its runtime."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        catalogue: Catalogue,
        clock: Clock = utc_now,
    ) -> None:
        self.runtime = runtime
        self.catalogue = catalogue
        self.clock = clock
        self.calendar = default_calendar(province=runtime.settings.province)

    async def receive(self, new: NewDossier) -> store.Dossier:
        """Store a dossier and its event (``dossier.received``, or ``dossier.submitted`` for
        an online dossier awaiting acceptance), atomically."""
        errors = domain.catalogue_errors(self.catalogue, new.procedure_code)
        if errors:
            raise CatalogueError(errors)
        procedure = self.catalogue.procedures[new.procedure_code]
        now = self.clock()
        status = domain.initial_status(new.channel)
        received_at = now if status is domain.DossierStatus.RECEIVED else None
        due_at = (
            self.calendar.due_at(received_at, procedure.duration_for(online=False))
            if received_at is not None
            else None
        )
        async with self.runtime.db.transaction() as session:
            day = domain.reception_day(now)
            sequence = await store.next_sequence(session, new.receiving_unit, day)
            code = domain.dossier_code(new.receiving_unit, day, sequence)
            dossier = store.Dossier(
                code=code,
                procedure_code=new.procedure_code,
                channel=new.channel.value,
                receiving_unit=new.receiving_unit,
                status=status.value,
                submitted_at=now,
                received_at=received_at,
                due_at=due_at,
                applicant_name=new.applicant.name,
                applicant_phone=new.applicant.phone,
                applicant_email=new.applicant.email,
                applicant_id_number=new.applicant_id_number,
                documents=new.documents,
            )
            session.add(dossier)
            payload: DossierReceived | DossierSubmitted
            if received_at is not None:
                limit = procedure.time_limit_for(online=False)
                payload = DossierReceived(
                    procedure_code=new.procedure_code,
                    channel=new.channel,
                    receiving_unit=new.receiving_unit,
                    received_at=received_at,
                    due_at=due_at,
                    applicant=new.applicant,
                    documents=new.documents,
                    field=procedure.field,
                    time_limit=TimeLimit(value=limit.value, unit=limit.unit.value),
                    supplement_rule=procedure.supplement_rule,
                    catalogue_version=self.catalogue.version,
                )
            else:
                payload = DossierSubmitted(
                    procedure_code=new.procedure_code,
                    channel=new.channel,
                    receiving_unit=new.receiving_unit,
                    submitted_at=now,
                    applicant=new.applicant,
                )
            event = Envelope.wrap(payload, occurred_at=now, source=SERVICE, dossier_code=code)
            enqueue(session, event, DOSSIER_LIFECYCLE.name)
        self.runtime.relay.wake()
        DOSSIERS_RECEIVED.labels(new.channel.value).inc()
        return dossier

    async def get(self, code: str) -> store.Dossier | None:
        """The dossier with this code."""
        async with self.runtime.db.sessions() as session:
            return await store.get_dossier(session, code)


def build(settings: Settings) -> Intake:
    """Intake's runtime and use cases (it publishes the lifecycle topic)."""
    runtime = ServiceRuntime(SERVICE, settings, tables=store.TABLES, publishes=[DOSSIER_LIFECYCLE])
    return Intake(runtime, catalogue=seed_catalogue())
