"""The sender: take due dossiers from the ledger and send their states to the portal, in
order, each dossier's one at a time.

Invariants (besides ``services.portal.store``'s):
- a dossier's states go in step order; a state is acknowledged (``store.acknowledge``)
  only once the portal answered success to every call it needs, and a state at or below
  the last acknowledged step is skipped, never sent;
- the first record of a dossier goes with isUpdating "False", every later one "True";
- an answer of HTTP 401 or ``SESSION_EXPIRED`` makes the client log in again and resend
  the call once; a 5xx, no answer or another error code leaves the state pending and
  the dossier waits a backoff (the round stops at a portal that does not answer: the
  others wait their turn); a 4xx other than 401 puts the dossier in the failed list
  (``motcua portal resync``) and the round goes on with the others;
- a dossier is held under a lease while it is sent, so two instances never send one
  dossier's states at once;
- names, fields and fees come from the catalogue version in use (``CatalogueInUse``,
  fed by the catalogue topic, read back from ``catalogue_copy`` before the first round),
  so a procedure routing added after the start is sent with its name and fee; a dossier
  received under a version not in use yet is left pending (no attempt counted) until it is.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import Counter

from services.portal import domain, store
from services.portal.app.ledger import applicant_of, facts_of
from services.portal.settings import PortalSettings
from shared.catalogue_sync import CatalogueInUse
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.retry import backoff
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

CALLS = Counter(
    "motcua_portal_calls_total",
    "Calls to the national portal by service (DongBoHoSoMC, CapNhatTienDoHoSoMC, login) "
    "and outcome.",
    ["call", "outcome"],
)
STATES_SENT = Counter(
    "motcua_portal_states_sent_total", "Dossier states the national portal acknowledged."
)
FAILURES = Counter(
    "motcua_portal_failures_total",
    "Dossier sync attempts that failed: retry (tried again later) or rejected (failed list).",
    ["kind"],
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A call's outcome and a reason fit for the ledger (no personal data)."""

    outcome: domain.Outcome
    reason: str
    reached: bool
    """Whether the portal answered at all (with something other than a 5xx)."""


class PortalClient:
    """Speaks the portal's protocol: log in, keep the session, post calls.

    One session for the process; a call the portal answers "session expired" (or 401)
    is sent once more after a new log-in.
    """

    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._session: str | None = None
        self._login_lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _url(self, path: str) -> str:
        return f"{(self.settings.url or '').rstrip('/')}{path}"

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int | None, Any]:
        try:
            answer = await self._http.post(
                self._url(path), json=body, headers={"dstcode": self.settings.dstcode}
            )
        except httpx.HTTPError:
            return None, None
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, None

    async def login(self) -> Reply:
        """Log in and keep the session; the reply says whether it worked."""
        async with self._login_lock:
            status, body = await self._post(
                self.settings.auth_path,
                {
                    "username": self.settings.username,
                    "password": self.settings.password.get_secret_value(),
                },
            )
            outcome = domain.outcome_of(status, body)
            session = body.get("session") if isinstance(body, dict) else None
            if outcome is domain.Outcome.OK and isinstance(session, str) and session:
                self._session = session
                CALLS.labels("login", "ok").inc()
                return Reply(outcome, "", reached=True)
            self._session = None
            CALLS.labels("login", "failed").inc()
            reason = f"login refused: {domain.describe(status, body)}"
            return Reply(domain.Outcome.RETRY, reason, reached=_reached(status))

    async def call(self, service: str, *, updating: bool, data: list[dict[str, Any]]) -> Reply:
        """Post one call; log in first if there is no session, and again (once) if the
        portal says the session expired."""
        for attempt in range(2):
            if self._session is None:
                login = await self.login()
                if login.outcome is not domain.Outcome.OK:
                    return login
            body = {
                "session": self._session,
                "madonvi": self.settings.dstcode,
                "service": service,
                "isUpdating": "True" if updating else "False",
                "data": data,
            }
            status, answer = await self._post(self.settings.sync_path, body)
            outcome = domain.outcome_of(status, answer)
            CALLS.labels(service, outcome.value).inc()
            if outcome is domain.Outcome.RELOGIN:
                self._session = None
                if attempt == 0:
                    continue
                outcome = domain.Outcome.RETRY
            reason = "" if outcome is domain.Outcome.OK else domain.describe(status, answer)
            return Reply(outcome, reason, reached=_reached(status))
        raise AssertionError("unreachable")  # pragma: no cover


WAITING = Reply(domain.Outcome.RETRY, "waiting for a newer catalogue", reached=True)
"""What ``Sender._sync`` answers for a dossier held for the catalogue: nothing was sent."""


def _reached(status: int | None) -> bool:
    return status is not None and status < 500


class Sender:
    """Sends the ledger's due dossiers through a ``PortalClient``."""

    def __init__(
        self,
        db: Database,
        settings: PortalSettings,
        catalogue: CatalogueInUse,
        *,
        client: PortalClient | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.catalogue = catalogue
        self.client = client or PortalClient(settings)
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._wake = Wakeup()
        self._held: dict[str, int] = {}
        """Dossiers held for a newer catalogue: code -> the version in use when held. Left
        out of the rounds until the catalogue moves past it, so that a full batch of them
        cannot keep newer dossiers out (per process: a restart tries each once again)."""

    def wake(self) -> None:
        """Look for due dossiers now."""
        self._wake.set()

    async def send_forever(self) -> None:
        """Send until cancelled (nothing while the portal is not configured)."""
        try:
            while True:
                try:
                    taken = await self.send_round()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("portal round failed: %s", type(exc).__name__)
                    taken = 0
                if taken < self.settings.batch:
                    await self._wake.sleep(self.settings.idle_seconds)
        finally:
            await self.client.close()

    async def send_round(self) -> int:
        """Take up to ``batch`` due dossiers and send each one's pending states; return
        how many were taken (not counting those held for the catalogue, so that held
        dossiers alone never keep the sender from resting). Stops early at a portal that
        does not answer."""
        if not self.settings.configured:
            return 0
        now = self.clock()
        async with self.db.transaction() as session:
            await self.catalogue.restore(session)
            version = self.catalogue.version
            self._held = {code: held for code, held in self._held.items() if held >= version}
            codes = await store.due_codes(
                session, now, self.settings.batch, skip=sorted(self._held)
            )
        taken = 0
        for code in codes:
            until = now + timedelta(seconds=self.settings.lease_seconds)
            async with self.db.transaction() as session:
                if not await store.claim(session, code, self.owner, now, until):
                    continue
            try:
                reply = await self._sync(code)
            finally:
                async with self.db.transaction() as session:
                    await store.release(session, code, self.owner)
            if reply is WAITING:
                self._held[code] = version
            else:
                taken += 1
            if reply is not None and not reply.reached:
                break
        return taken

    async def _sync(self, code: str) -> Reply | None:
        """Send the dossier's pending states in order; the failed reply, if any
        (``WAITING``: held for a newer catalogue, nothing sent)."""
        async with self.db.sessions() as session:
            row = await store.dossier(session, code)
            states = await store.pending_states(session, code)
        if row is None:
            return None
        facts, applicant = facts_of(row), applicant_of(row)
        if facts is None:
            return None
        if domain.waits_for_catalogue(facts, self.catalogue.version):
            return WAITING
        created, acked_step, acked_status = row.created, row.acked_step, row.acked_status
        for pending in states:
            if pending.step <= acked_step:
                async with self.db.transaction() as session:
                    await store.settle_state(
                        session, code, pending.step, store.SKIPPED, self.clock()
                    )
                continue
            state = _state_of(pending)
            needs_record, needs_progress = domain.calls_for(
                state, created=created, acked_status=acked_status
            )
            if needs_record:
                record = domain.record(facts, state, applicant, self._procedure(facts))
                reply = await self.client.call(
                    domain.RECORD_SERVICE, updating=created, data=[record]
                )
                if reply.outcome is not domain.Outcome.OK:
                    await self._failed(code, row.attempts, reply)
                    return reply
                created, acked_status = True, state.national_status
                async with self.db.transaction() as session:
                    await store.mark_created(session, code, state.national_status)
            if needs_progress:
                entry = domain.progress(facts, state)
                reply = await self.client.call(domain.PROGRESS_SERVICE, updating=True, data=[entry])
                if reply.outcome is not domain.Outcome.OK:
                    await self._failed(code, row.attempts, reply)
                    return reply
            async with self.db.transaction() as session:
                await store.acknowledge(
                    session, code, state.step, state.national_status, self.clock()
                )
            acked_step = state.step
            STATES_SENT.inc()
        return None

    def _procedure(self, facts: domain.Facts) -> domain.Procedure:
        found = self.catalogue().get(facts.procedure_code)
        return domain.procedure_for(found, facts.channel)

    async def _failed(self, code: str, attempts: int, reply: Reply) -> None:
        """Record a failed call: retried after a backoff, or the failed list (a 4xx)."""
        rejected = reply.outcome is domain.Outcome.REJECTED
        wait = backoff(
            attempts + 1, self.settings.retry_first_seconds, self.settings.retry_max_seconds
        )
        FAILURES.labels("rejected" if rejected else "retry").inc()
        async with self.db.transaction() as session:
            await store.record_failure(
                session,
                code,
                reply.reason,
                self.clock() + timedelta(seconds=wait),
                failed=rejected,
            )


def _state_of(row: store.PortalState) -> domain.State:
    return domain.State(
        step=row.step,
        national_status=row.national_status,
        at=row.at,
        action=row.action,
        office=row.office,
        reason=row.reason,
        due_at=row.due_at,
    )
