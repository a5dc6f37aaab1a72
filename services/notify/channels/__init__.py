"""Delivery channels behind one interface: ``base.Sink``; ``file.FileSink`` for development."""

from services.notify.channels.base import DeliveryError, Outgoing, Sink
from services.notify.channels.file import FileSink

__all__ = ["DeliveryError", "FileSink", "Outgoing", "Sink"]
