"""Reading dossiers: by staff (detail, slip), by the applicant (public look-up), and the
API keys intake's own authentication looks up."""

from __future__ import annotations

from services.intake import domain, store
from services.intake.core import IntakeCore, NoSlip
from services.intake.slip import Slip, time_limit_text, unit_name
from shared.auth import Access, Principal, StoredKey, may
from shared.errors import Forbidden
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

    async def public_lookup(self, code: str, phone: str) -> store.Dossier | None:
        """The dossier, only when ``phone`` is its applicant's (``+84`` and ``0`` alike).

        An unknown code and a wrong phone give the same ``None``: the answer tells
        nobody whether a code exists.
        """
        wanted = domain.normalise_phone(phone)
        dossier = await self.get(code)
        if wanted is None or dossier is None or dossier.applicant_phone is None:
            return None
        return dossier if domain.normalise_phone(dossier.applicant_phone) == wanted else None

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The stored API key with this id (``shared.auth``'s ``KeyLookup``)."""
        async with self.runtime.db.sessions() as session:
            row = await store.get_key(session, key_id)
            return row.stored() if row is not None else None
