"""How every Kafka client of a process connects: TLS and SASL, from the settings.

FastStream's broker takes a security object (``broker_security``); the plain aiokafka
clients (end offsets, topic creation, ``motcua dlq`` and ``motcua sla rebuild``) take
keyword arguments (``client_security``). Both are made from the same settings, so every
client of a process connects as the same user over the same TLS. On PLAINTEXT (the local
broker) both are empty and the clients connect as before.

With SSL or SASL_SSL the broker's certificate is checked against ``kafka_ssl_cafile`` (or
the system's CAs) and its host name against the certificate, always.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import Settings

__all__ = ["broker_security", "client_security"]


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in {"SSL", "SASL_SSL"}:
        return None
    context: ssl.SSLContext = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    return context


def _credentials(settings: Settings) -> tuple[str, str] | None:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return None
    username, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if not username or password is None:  # Settings refuses this already
        msg = f"{settings.kafka_security_protocol} needs a SASL username and password"
        raise ValueError(msg)
    return username, password.get_secret_value()


def client_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments that make an aiokafka client (consumer, producer, admin) connect
    as ``settings`` say; empty on PLAINTEXT."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "ssl_context": _tls(settings),
    }
    credentials = _credentials(settings)
    if credentials is not None:
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": credentials[0],
            "sasl_plain_password": credentials[1],
        }
    return options


def broker_security(settings: Settings) -> BaseSecurity | None:
    """FastStream's security object for the same connection; ``None`` on PLAINTEXT."""
    tls = _tls(settings)
    credentials = _credentials(settings)
    if credentials is None:
        return None if tls is None else BaseSecurity(ssl_context=tls)
    kind = {
        "SCRAM-SHA-512": SASLScram512,
        "SCRAM-SHA-256": SASLScram256,
        "PLAIN": SASLPlaintext,
    }[settings.kafka_sasl_mechanism]
    return kind(*credentials, ssl_context=tls, use_ssl=tls is not None)
