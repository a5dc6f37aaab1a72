"""One service under uvicorn: what ``motcua run`` does, without the command line.

``python -m motcua.serve <service> [--host H] [--port N]`` is how the local stack starts
each service. The command line imports the use cases of every service (its commands
reach them all), which a process serving one service does not need: starting here saves
each of the stack's processes about a second of CPU.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys

import uvicorn
from pydantic import ValidationError

from shared.clock import ClockStartError, process_offset, set_offset
from shared.settings import SERVICES, ServiceName, Settings, get_settings, keep_private

__all__ = ["SERVICE_PORTS", "configure_logging", "main", "serve"]

SERVICE_PORTS: dict[ServiceName, int] = {
    "intake": 8101,
    "routing": 8102,
    "sla": 8103,
    "notify": 8104,
    "portal": 8105,
}
"""Each service's own HTTP port on the local machine."""


def configure_logging(level: str) -> None:
    """One format for every process; httpx's line per request is left out (the entry
    point's forwarding and the services' own HTTP calls would drown what matters)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


GC_THRESHOLDS = (10_000, 50, 100)
"""The collector's thresholds in a service process (Python's default: 700, 10, 10). A
consumer batch allocates tens of thousands of short-lived objects, nearly all freed by
reference counting; the default runs a young collection every 700 of them and a full one
every 70,000 (`bench/RESULTS.md`: ~12 % of routing's hop CPU at the default)."""


def serve(service: ServiceName, settings: Settings, *, host: str, port: int | None) -> None:
    """Run ``service`` (HTTP API, metrics, health, consumers) until it is stopped.

    Files it writes under ``var_dir`` are private (600/700). The process's clock is
    offset first when the settings say so; a wrong ``clock_start`` raises
    ``ClockStartError`` before anything starts.
    """
    keep_private(settings.var_dir)
    configure_logging(settings.log_level)
    set_offset(process_offset(settings.clock_start, settings.clock_offset_seconds))
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        f"services.{service}.api:create_app",
        factory=True,
        host=host,
        port=port or SERVICE_PORTS[service],
        log_level=settings.log_level.lower(),
        access_log=False,
        # uvloop's loop and httptools' parser where installed (they are dependencies;
        # uvloop has no Windows build, where asyncio's loop serves)
        loop="auto",
        http="auto",
        # X-Forwarded-For is believed from the proxy in front only (the local gateway, on
        # loopback, by default); from any other peer the peer is the client
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def main(argv: list[str] | None = None) -> int:
    """The entry point of ``python -m motcua.serve``; 2 when the settings are wrong (each
    wrong or missing one named, its value unshown)."""
    parser = argparse.ArgumentParser(prog="python -m motcua.serve", description=__doc__)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    parser.add_argument("--port", type=int, help="HTTP port (default: the service's own).")
    args = parser.parse_args(argv)
    try:
        serve(args.service, get_settings(), host=args.host, port=args.port)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"])
            sys.stderr.write(f"{where}: {error['msg']}\n" if where else f"{error['msg']}\n")
        return 2
    except ClockStartError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
