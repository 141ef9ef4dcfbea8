"""`python -m media_repo -c homeserver.yaml`: the media repository as a process of its own.

It shares the homeserver's database and media store (and storage
providers), so any number of media processes can serve behind a reverse
proxy that routes ``/_matrix/media`` and ``/_matrix/client/v1/media`` to
them; set ``enable_media_repo: false`` for the homeserver then. Like
``homeserver/app.py`` this file is a composition root and may import from
every package: access tokens are checked by the homeserver's own
authenticator over the shared users table.

Listens on ``--port``/``--bind`` if given, else on every configured http
listener whose resources include ``media``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

logger = logging.getLogger("media_repo")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m media_repo", description="Myelin media repository")
    p.add_argument("-c", "--config-path", action="append", default=[], metavar="FILE", required=True,
                   help="the homeserver's config file; repeat to merge several")
    p.add_argument("--port", type=int, help="listen on this port instead of the configured media listeners")
    p.add_argument("--bind", default="127.0.0.1", help="address for --port (default 127.0.0.1)")
    return p.parse_args(argv)


def build(config: Any, reactor: Any) -> tuple[Any, Any]:
    """(site, media repository) for ``config`` on ``reactor``."""
    from homeserver.handlers.auth import AuthHandler
    from homeserver.http.router import Router
    from homeserver.http.site import MyelinSite, RootResource
    from homeserver.storage.database import Database, ThreadRunner, make_engine
    from homeserver.storage.prepare import prepare_database
    from homeserver.storage.stores.users import UserStore
    from homeserver.util.clock import Clock
    from homeserver.util.ratelimit import Ratelimiter
    from media_repo.repository import build_media_repository

    clock = Clock(reactor)
    engine = make_engine(config.database.name, dict(config.database.args))
    size = 1 if engine.name == "sqlite" else int(config.database.args.get("cp_max", 10))
    db = Database(engine, ThreadRunner(reactor, size))
    prepare_database(db)
    auth = AuthHandler(UserStore(db), clock)
    router = Router()
    media = build_media_repository(
        server_name=config.server.server_name, config=config.media, router=router, db=db, clock=clock,
        reactor=reactor, io_runner=ThreadRunner(reactor, 4, name="media-io"),
        cpu_runner=ThreadRunner(reactor, 2, name="cpu"),
        create_limiter=Ratelimiter("rc_media_create", config.ratelimiting.rc_media_create, clock))
    site = MyelinSite(RootResource(router, auth.authenticate),
                      max(config.media.max_upload_size, 10 * 1024 * 1024), reactor=reactor)
    return site, media


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    from homeserver.config import ConfigError, load_config
    from homeserver.logging_setup import setup_logging

    try:
        config = load_config(args.config_path)
    except ConfigError as e:
        print(f"Error in configuration: {e}", file=sys.stderr)
        return 1
    setup_logging(config)
    from twisted.internet import reactor

    from homeserver.http import access_log

    if access_log.writer() is not None:
        access_log.writer().attach_reactor(reactor)
    site, _media = build(config, reactor)
    if args.port is not None:
        binds = [(args.port, args.bind)]
    else:
        binds = [(listener.port, addr) for listener in config.server.listeners
                 if listener.type == "http" and any("media" in r.names for r in listener.resources)
                 for addr in (listener.bind_addresses or ["127.0.0.1"])]
    if not binds:
        print("no http listener serves the media resource: give --port", file=sys.stderr)
        return 2
    for port, addr in binds:
        reactor.listenTCP(port, site, interface=addr)  # type: ignore[attr-defined]
        logger.info("media repository listening on %s:%d", addr, port)
    reactor.run()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
