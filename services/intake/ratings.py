"""The citizen's satisfaction rating (đánh giá mức độ hài lòng): once per dossier, after
its result, at the counter's kiosk or online with the code and phone.

Invariants: a dossier has at most one rating (the table's key is the dossier code, and
the dossier row is locked while the rating is decided); a rating exists only for a
dossier whose status was resolved or returned (national 9 or 10) when it was given; the
rating and its ``rating.given`` event are written in one transaction, and a refusal
writes neither. The comment stays in intake's table: the event carries the level and
where the dossier belongs, nothing about the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import domain, store, views
from services.intake.core import SERVICE
from shared.auth import Principal, dossier_not_found
from shared.clock import Clock, in_vietnam, utc_now
from shared.errors import Conflict
from shared.events import Channel, RatingChannel, RatingGiven, SatisfactionLevel
from shared.outbox import enqueue
from shared.service import ServiceRuntime

RATINGS_GIVEN = Counter(
    "motcua_ratings_total",
    "Satisfaction ratings recorded, by level and channel.",
    ["level", "channel"],
)


_Record = Callable[[AsyncSession], Awaitable["views.RatingOut | None"]]


class AlreadyRated(Conflict, ValueError):
    """The dossier has its rating already: one per dossier (409)."""


class NoResultYet(Conflict, ValueError):
    """The dossier has no result yet (not resolved or returned): nothing to rate (409;
    the answer also gives the current ``status`` and its ``national_status``)."""

    def __init__(self, code: str, current: domain.DossierStatus) -> None:
        self.current = current
        super().__init__(
            f"dossier {code} has no result yet (it is {current.value}): "
            "a rating follows the result (national status 9 or 10)"
        )

    def body(self) -> dict[str, Any]:
        """The message, the current status and its national code."""
        return {
            **super().body(),
            "status": self.current.value,
            "national_status": self.current.national_code,
        }


@dataclass(frozen=True, slots=True)
class GivenRating:
    """What the citizen chose: a level and, optionally, a comment (≤ 500 characters)."""

    level: SatisfactionLevel
    comment: str | None = None


class Ratings:
    """The rating use cases over intake's database; "now" comes from ``clock``."""

    def __init__(self, runtime: ServiceRuntime, *, clock: Clock = utc_now) -> None:
        self.runtime = runtime
        self.clock = clock

    async def at_kiosk(self, code: str, given: GivenRating, *, actor: Principal) -> views.RatingOut:
        """Record a rating given on a kiosk of the dossier's receiving unit.

        A dossier another unit received answers ``NotFound`` exactly as an unknown code
        (``shared.auth``'s rule: codes are sequential, a foreign key learns nothing);
        ``AlreadyRated`` or ``NoResultYet`` otherwise refuse, writing nothing."""

        async def record(session: AsyncSession) -> views.RatingOut | None:
            dossier = await store.lock_dossier(session, code)
            if dossier is None or not actor.covers(dossier.receiving_unit):
                raise dossier_not_found(code)
            return await self._record(session, dossier, given, RatingChannel.KIOSK, actor.key_id)

        out = await self._once(code, record)
        assert out is not None  # a kiosk rating refuses rather than answering nothing
        return out

    async def online(self, code: str, phone: str, given: GivenRating) -> views.RatingOut | None:
        """Record a rating given online, when ``phone`` is the applicant's (``+84`` and
        ``0`` alike). An unknown code and a wrong phone give the same ``None`` (as the
        public look-up does), writing nothing; with the right phone, ``AlreadyRated`` or
        ``NoResultYet`` may refuse."""
        wanted = domain.normalise_phone(phone)
        if wanted is None:
            return None

        async def record(session: AsyncSession) -> views.RatingOut | None:
            dossier = await store.lock_dossier(session, code)
            if dossier is None or dossier.applicant_phone is None:
                return None
            if domain.normalise_phone(dossier.applicant_phone) != wanted:
                return None
            return await self._record(session, dossier, given, RatingChannel.ONLINE, None)

        return await self._once(code, record)

    async def _once(self, code: str, record: _Record) -> views.RatingOut | None:
        """Run ``record`` in one transaction; a second rating that raced past the read
        fails on the table's key and is answered ``AlreadyRated`` (its transaction, event
        included, rolled back)."""
        try:
            async with self.runtime.db.transaction() as session:
                out: views.RatingOut | None = await record(session)
        except IntegrityError as exc:
            raise AlreadyRated(f"dossier {code} is rated already") from exc
        if out is not None:
            RATINGS_GIVEN.labels(out.level.value, out.channel.value).inc()
            self.runtime.relay.wake()
        return out

    async def _record(
        self,
        session: AsyncSession,
        dossier: store.Dossier,
        given: GivenRating,
        channel: RatingChannel,
        key_id: str | None,
    ) -> views.RatingOut:
        """Check the locked dossier may be rated, then write the rating and enqueue
        ``rating.given`` in ``session``'s transaction."""
        code = dossier.code
        if await store.get_rating(session, code) is not None:
            raise AlreadyRated(f"dossier {code} is rated already")
        status = domain.DossierStatus(dossier.status)
        if status not in domain.WITH_RESULT:
            raise NoResultYet(code, status)
        at = self.clock()
        comment = (given.comment or "").strip() or None
        await store.add_rating(
            session,
            store.Rating(
                code=code,
                level=given.level.value,
                comment=comment,
                channel=channel.value,
                at=at,
                key_id=key_id,
            ),
        )
        event = RatingGiven(
            level=given.level,
            channel=channel,
            at=at,
            procedure_code=dossier.procedure_code,
            receiving_unit=dossier.receiving_unit,
            dossier_channel=Channel(dossier.channel),
        )
        enqueue(session, event, occurred_at=at, source=SERVICE, dossier_code=code)
        return views.RatingOut(code=code, level=given.level, channel=channel, at=in_vietnam(at))
