"""Intake: the front door where counters, kiosks and the portal hand in dossiers."""
