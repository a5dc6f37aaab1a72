"""Every Kafka topic of the contract, with its partition count.

Messages about one dossier are keyed by its dossier code, so they stay in order on
one partition. Each topic has a dead-letter twin ``<name>.dlq`` (one partition) that
keeps the original key and says why in its headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.kafka import Topic


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic of the contract."""

    name: str
    partitions: int
    description: str
    compacted: bool = False
    """Kafka keeps the newest record of each key for ever (``cleanup.policy=compact``)
    instead of deleting by age: a new consumer can always read the whole state."""

    @property
    def dead_letter(self) -> str:
        """Name of this topic's dead-letter twin."""
        return f"{self.name}.dlq"

    def declared(self, *, create: bool) -> Topic:
        """The FastStream declaration (created with its partitions when ``create``)."""
        return Topic(self.name, num_partitions=self.partitions, declare=create)


DEAD_LETTER_PARTITIONS = 1

DOSSIER_LIFECYCLE = TopicSpec(
    "motcua.dossier.lifecycle",
    6,
    "Every step of a dossier's life as intake records it: received, accepted, refused, ...",
)
DOSSIER_CONTACTS = TopicSpec(
    "motcua.dossier.contacts",
    6,
    "How to reach each dossier's applicant (name, phone, e-mail), as intake took them. "
    "Personal data: only notify (the messages) and portal (the national portal's record) "
    "read it; the lifecycle topic carries no contact.",
)
DOSSIER_ROUTING = TopicSpec(
    "motcua.dossier.routing",
    6,
    "Routing decisions: the responsible office, or the manual queue when nothing matches.",
)
DOSSIER_SLA = TopicSpec(
    "motcua.dossier.sla",
    6,
    "The legal clock: tracking started, warnings, overdue flags, final class.",
)
CATALOGUE = TopicSpec("motcua.catalogue", 1, "Versions of the procedure catalogue.")
CALENDAR = TopicSpec("motcua.calendar", 1, "Changes to the working-day calendar.")
API_KEYS = TopicSpec(
    "motcua.keys",
    1,
    "API keys as intake issues and revokes them (id, secret hash, role, unit), keyed by id.",
    compacted=True,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    DOSSIER_LIFECYCLE,
    DOSSIER_CONTACTS,
    DOSSIER_ROUTING,
    DOSSIER_SLA,
    CATALOGUE,
    CALENDAR,
    API_KEYS,
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in ALL_TOPICS}
