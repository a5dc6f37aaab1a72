"""Routing: names the office responsible for each dossier."""
