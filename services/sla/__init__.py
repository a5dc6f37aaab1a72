"""SLA: the legal clock of every open dossier."""
