"""``motcua dlq list|replay <topic>``: the dead letters of a topic, shown and put back.

A record is dead-lettered only when it failed on its own, repeatably (``shared.inbox``);
once the cause is fixed (a new release, a catalogue correction), ``replay`` publishes
each dead letter again on its source topic with its original key and value. Replaying
is idempotent: every consumer that had applied the event skips it by its inbox, and the
replay consumer group (``motcua-dlq-replay``) remembers how far it got, so a second
``replay`` sends only dead letters that came after (``--from-offset`` starts again
anywhere). Nothing personal is printed: the dossier code, the event's type and id, and
the reason the service gave.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared.deadletter import (
    HEADER_ATTEMPTS,
    HEADER_REASON,
    HEADER_SERVICE,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
)
from shared.events import UndecodableEvent, decode
from shared.kafka_security import client_security
from shared.settings import get_settings
from shared.topics import BY_NAME, TopicSpec

REPLAY_GROUP = "motcua-dlq-replay"
"""The consumer group whose committed offset on a ``.dlq`` topic marks what was replayed."""

dlq = typer.Typer(help="Dead-letter topics: list what failed and why, replay after a fix.")


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``.dlq`` topic, as read back."""

    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool

    @property
    def source_topic(self) -> str:
        """The topic the record was consumed from."""
        return self.headers.get(HEADER_SOURCE_TOPIC, "")

    def describe(self) -> str:
        """One line: where it came from, who gave up, why, and what the event is."""
        try:
            event = decode(self.value)
            what = f"{event.type} {event.event_id} dossier {event.dossier_code or '-'}"
        except UndecodableEvent:
            what = "undecodable"
        source = (
            f"{self.headers.get(HEADER_SOURCE_PARTITION, '?')}@"
            f"{self.headers.get(HEADER_SOURCE_OFFSET, '?')}"
        )
        return (
            f"{self.offset:>6}  {'replayed' if self.replayed else 'waiting ':<8}  "
            f"{source:<10}  {self.headers.get(HEADER_SERVICE, '?'):<8}  "
            f"x{self.headers.get(HEADER_ATTEMPTS, '?')}  {what}  "
            f"— {self.headers.get(HEADER_REASON, '')}"
        )


def _topic(name: str) -> TopicSpec:
    spec = BY_NAME.get(name) or BY_NAME.get(f"motcua.{name}")
    if spec is None:
        known = ", ".join(sorted(BY_NAME))
        typer.echo(f"unknown topic {name!r}: choose one of {known}", err=True)
        raise typer.Exit(2)
    return spec


async def read_dead_letters(bootstrap: str, spec: TopicSpec, **client: Any) -> list[DeadLetter]:
    """Every record of ``spec``'s dead-letter topic up to its end now, each marked
    replayed when it lies below the replay group's committed offset (``client``: connection
    options, ``shared.kafka_security.client_security``)."""
    partition = TopicPartition(spec.dead_letter, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=REPLAY_GROUP, enable_auto_commit=False, **client
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        committed = await consumer.committed(partition) or 0
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        letters: list[DeadLetter] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            for record in batch.get(partition, []):
                letters.append(
                    DeadLetter(
                        offset=record.offset,
                        key=record.key,
                        value=record.value or b"",
                        headers={k: v.decode("utf-8", "replace") for k, v in record.headers},
                        replayed=record.offset < committed,
                    )
                )
        return letters
    finally:
        await consumer.stop()


async def replay_dead_letters(
    bootstrap: str, spec: TopicSpec, *, from_offset: int | None, idempotence: bool, **client: Any
) -> list[DeadLetter]:
    """Publish again, on their source topic and in order, the dead letters from
    ``from_offset`` (default: the first one not replayed yet) to the end; then commit the
    replay group past them. Returns those sent."""
    letters = await read_dead_letters(bootstrap, spec, **client)
    start = from_offset if from_offset is not None else _first_waiting(letters)
    chosen = [letter for letter in letters if letter.offset >= start]
    if not chosen:
        return []
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotence, **client
    )
    await producer.start()
    try:
        for letter in chosen:
            await producer.send_and_wait(
                letter.source_topic or spec.name,
                letter.value,
                key=letter.key,
                headers=[("content-type", b"application/json")],
            )
    finally:
        await producer.stop()
    await _commit(bootstrap, TopicPartition(spec.dead_letter, 0), chosen[-1].offset + 1, client)
    return chosen


def _first_waiting(letters: list[DeadLetter]) -> int:
    waiting = [letter.offset for letter in letters if not letter.replayed]
    return waiting[0] if waiting else (letters[-1].offset + 1 if letters else 0)


async def _commit(
    bootstrap: str, partition: TopicPartition, offset: int, client: dict[str, Any]
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=REPLAY_GROUP, enable_auto_commit=False, **client
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.commit({partition: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


@dlq.command("list")
def list_(
    topic: Annotated[str, typer.Argument(help="Source topic, e.g. motcua.dossier.lifecycle.")],
) -> None:
    """Show a topic's dead letters: offset, replayed or waiting, source partition@offset,
    service, attempts, event, reason."""
    spec = _topic(topic)
    settings = get_settings()
    letters = asyncio.run(
        read_dead_letters(settings.kafka_bootstrap_servers, spec, **client_security(settings))
    )
    if not letters:
        typer.echo(f"{spec.dead_letter}: empty")
        return
    waiting = sum(not letter.replayed for letter in letters)
    typer.echo(f"{spec.dead_letter}: {len(letters)} dead letters, {waiting} not replayed")
    for letter in letters:
        typer.echo(letter.describe())


@dlq.command()
def replay(
    topic: Annotated[str, typer.Argument(help="Source topic, e.g. motcua.dossier.lifecycle.")],
    from_offset: Annotated[
        int | None,
        typer.Option(help="Replay from this dead-letter offset (default: the first waiting)."),
    ] = None,
) -> None:
    """Publish a topic's waiting dead letters again on their source topic."""
    spec = _topic(topic)
    if from_offset is not None and from_offset < 0:
        typer.echo("--from-offset must be 0 or more", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    sent = asyncio.run(
        replay_dead_letters(
            settings.kafka_bootstrap_servers,
            spec,
            from_offset=from_offset,
            idempotence=settings.kafka_idempotence,
            **client_security(settings),
        )
    )
    typer.echo(f"{spec.dead_letter}: {len(sent)} dead letters published again on {spec.name}")
    for letter in sent:
        typer.echo(letter.describe())


def register(app: typer.Typer) -> None:
    """Add ``motcua dlq`` to the command line."""
    app.add_typer(dlq, name="dlq")
