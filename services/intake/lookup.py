"""Reading dossiers: by staff (detail, slip), by the applicant (public look-up), and the
API keys intake's own authentication looks up."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.intake import domain, store, views
from services.intake.core import IntakeCore, NoSlip
from services.intake.slip import Slip, time_limit_text, unit_name
from shared.auth import ALL_UNITS, Access, DossierUnits, Principal, StoredKey, may, may_reach
from shared.clock import in_vietnam_or_none
from shared.errors import Forbidden, InvalidFields
from shared.events import Channel

PUBLIC_LOOKUP_PATH = "/api/v1/public/dossiers"


class Lookup(IntakeCore):
    """The look-up use cases."""

    async def get(self, code: str) -> store.Dossier | None:
        """The dossier with this code."""
        async with self.runtime.db.sessions() as session:
            return await store.get_dossier(session, code)

    async def detail(
        self, code: str, *, actor: Principal
    ) -> tuple[store.Dossier, list[store.DossierHistory]]:
        """The dossier with this code and its history; ``NotFound`` if there is none or
        ``actor`` may not read it."""
        async with self.runtime.db.sessions() as session:
            dossier = await self._reachable(session, code, actor, Access.READ)
            return dossier, await store.history(session, code)

    async def slip(self, code: str, *, actor: Principal) -> Slip:
        """What the slip of a received dossier prints (the applicant's name and phone:
        personal data); ``Forbidden`` for a role without it, ``NotFound`` for a dossier
        not received by the key's unit, ``NoSlip`` when it was never received."""
        if not may(actor, Access.READ_PERSONAL):
            raise Forbidden(f"role {actor.role.value} may not read personal data")
        async with self.runtime.db.sessions() as session:
            dossier = await self._reachable(session, code, actor, Access.READ_PERSONAL)
        if dossier.received_at is None:
            msg = f"dossier {code} was not received (it is {dossier.status}): no slip"
            raise NoSlip(msg)
        await self.restore_catalogue()
        procedure = self.procedure(dossier.procedure_code)
        limit = procedure.time_limit_for(online=dossier.channel == Channel.ONLINE.value)
        base = self.options.public_base_url.rstrip("/")
        return Slip(
            code=dossier.code,
            unit_name=unit_name(dossier.receiving_unit),
            procedure_name=procedure.name,
            applicant_name=dossier.applicant_name,
            applicant_phone=dossier.applicant_phone,
            documents=dossier.documents,
            time_limit=time_limit_text(limit.value, limit.unit),
            received_at=dossier.received_at,
            due_at=dossier.due_at,
            lookup_url=f"{base}{PUBLIC_LOOKUP_PATH}/{dossier.code}",
        )

    async def public_lookup(self, code: str, phone: str) -> views.PublicDossierOut | None:
        """The public view of the dossier, only when ``phone`` is its applicant's (``+84``
        and ``0`` alike); while it awaits a supplement, with what the officer asked for
        (its history is read then only).

        An unknown code and a wrong phone give the same ``None``: the answer tells
        nobody whether a code exists.
        """
        wanted = domain.normalise_phone(phone)
        async with self.runtime.db.sessions() as session:
            dossier = await store.get_dossier(session, code)
            if wanted is None or dossier is None or dossier.applicant_phone is None:
                return None
            if domain.normalise_phone(dossier.applicant_phone) != wanted:
                return None
            awaited = dossier.status == domain.DossierStatus.SUPPLEMENT_REQUESTED.value
            history = await store.history(session, code) if awaited else []
        return views.PublicDossierOut.of(dossier, history)

    async def dossiers(
        self,
        wanted: store.DossierFilter,
        *,
        actor: Principal,
        sort: store.DossierSort,
        cursor: str | None,
        limit: int,
    ) -> views.DossierPageOut:
        """One page of the dossiers ``actor`` may read (``shared.auth``'s READ rule: its
        unit received or handles them; every one for admin and all-unit keys) kept by
        ``wanted``, in ``sort``'s order, after ``cursor`` (the previous page's
        ``next_cursor``; a foreign or damaged one is ``InvalidFields`` naming ``cursor``).
        The applicant's name only where ``actor`` may read personal data."""
        if not may(actor, Access.READ):
            raise Forbidden(f"role {actor.role.value} may not read dossiers")
        after = None
        if cursor is not None:
            try:
                after = store.Keyset(*domain.decode_cursor(cursor, sort))
            except domain.BadCursor as exc:
                raise InvalidFields([("cursor", str(exc))], location="query") from exc
        scoped = replace(
            wanted,
            reader_unit=None if actor.covers(ALL_UNITS) else actor.unit,
            unfinished=frozenset(s.value for s in domain.UNFINISHED),
            now=self.clock(),
        )
        await self.restore_catalogue()
        async with self.runtime.db.sessions() as session:
            rows = await store.list_dossiers(
                session, scoped, sort=sort, after=after, limit=limit + 1
            )
        page = rows[:limit]
        items = [self._listed(dossier, office, actor, scoped.now) for dossier, office in page]
        next_cursor = None
        if len(rows) > limit:  # one more row than the page: there is a next page
            last = page[-1][0]
            at = last.due_at if sort == "due" else last.received_at
            next_cursor = domain.encode_cursor(sort, at, last.code)
        return views.DossierPageOut(items=items, next_cursor=next_cursor)

    def _listed(
        self, dossier: store.Dossier, routed: str | None, actor: Principal, now: datetime
    ) -> views.DossierListItemOut:
        state = domain.DossierStatus(dossier.status)
        personal = may_reach(actor, Access.READ_PERSONAL, DossierUnits.of(dossier.receiving_unit))
        try:
            name: str | None = self.procedure(dossier.procedure_code).name
        except KeyError:
            name = None
        return views.DossierListItemOut(
            code=dossier.code,
            procedure_code=dossier.procedure_code,
            procedure_name=name,
            status=state.value,
            status_text=domain.STATUS_TEXT[state],
            channel=dossier.channel,
            receiving_unit=dossier.receiving_unit,
            office=dossier.office or routed,
            received_at=in_vietnam_or_none(dossier.received_at),
            due_at=in_vietnam_or_none(dossier.due_at),
            extended_due_at=in_vietnam_or_none(dossier.extended_due_at),
            overdue=domain.is_overdue(state, dossier.due_at, dossier.extended_due_at, now),
            applicant_name=dossier.applicant_name if personal else None,
        )

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The stored API key with this id (``shared.auth``'s ``KeyLookup``)."""
        async with self.runtime.db.sessions() as session:
            row = await store.get_key(session, key_id)
            return row.stored() if row is not None else None
