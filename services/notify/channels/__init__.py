"""Delivery channels behind one interface (``base.Sink``): ``smtp``, ``sms_http``, ``file``,
and ``failover`` to chain them."""

from services.notify.channels.base import DeliveryError, Outgoing, Sink
from services.notify.channels.failover import FailoverSink
from services.notify.channels.file import FileSink
from services.notify.channels.sms_http import HttpSmsSink
from services.notify.channels.smtp import SmtpSink

__all__ = [
    "DeliveryError",
    "FailoverSink",
    "FileSink",
    "HttpSmsSink",
    "Outgoing",
    "Sink",
    "SmtpSink",
]
