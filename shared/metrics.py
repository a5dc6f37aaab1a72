"""Prometheus metrics shared by the services (default registry, one per process).

Labels never carry personal data: only service names, topics, channels, offices and
outcomes.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

OUTBOX_BACKLOG = Gauge(
    "motcua_outbox_backlog", "Outbox rows committed but not yet published.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "motcua_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0 when empty).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "motcua_outbox_published_total", "Outbox rows published to Kafka.", ["service"]
)
DEAD_LETTERS = Counter(
    "motcua_dead_letters_total", "Messages sent to a dead-letter topic.", ["topic"]
)
TRANSIENT_FAILURES = Counter(
    "motcua_consumer_transient_failures_total",
    "Batches a consumer could not apply for an operational reason (database, disk or broker "
    "away) and will read again from the same record.",
    ["service", "topic"],
)
CONSUMER_STALLED = Gauge(
    "motcua_consumer_stalled",
    "Subscriptions of the service retrying an operational failure right now.",
    ["service"],
)
OUTBOX_REPUBLISHED = Counter(
    "motcua_outbox_republished_total",
    "Published outbox rows queued again because the broker no longer had them.",
    ["service", "topic"],
)
RETENTION_PURGED = Counter(
    "motcua_retention_purged_total",
    "Rows deleted after their retention period.",
    ["service", "table"],
)
DUPLICATES_SKIPPED = Counter(
    "motcua_duplicate_events_total",
    "Redelivered events a consumer had already applied and skipped.",
    ["service"],
)
KEY_EVENTS_REJECTED = Counter(
    "motcua_key_events_rejected_total",
    "api_key.changed events a service ignored: unsigned, or signed with no secret it "
    "accepts (forged, or intake runs with another secret). Counted at each reading: the "
    "keys topic is read whole again at every start.",
    ["service", "reason"],
)


async def metrics_endpoint(_request: Request) -> Response:
    """``GET /metrics`` as an explicit route (a mounted app would answer with a redirect)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
