"""What every motcua service uses and nothing service-specific.

The event contract (`events`, `topics`), settings, database and broker plumbing
(`db`, `inbox`, `outbox`, `broker`, `deadletter`), the local broker, metrics and the
service host. Nothing here imports a service.
"""
