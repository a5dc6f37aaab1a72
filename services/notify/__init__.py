"""Notify: messages to citizens, and the early / on-time / late reports."""
