"""`python -m homeserver`: read args and config, build the app, run the reactor.

Synapse's flags: ``-c/--config-path`` (repeatable; later files override),
``--generate-config --server-name NAME --config-path FILE [--data-directory DIR]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m homeserver", description="Myelin Matrix homeserver")
    p.add_argument("-c", "--config-path", action="append", default=[], metavar="FILE",
                   help="config file; repeat to merge several (later ones override)")
    p.add_argument("--generate-config", action="store_true", help="write a complete config file and exit")
    p.add_argument("-H", "--server-name", help="server name for --generate-config")
    p.add_argument("--data-directory", help="where --generate-config puts the database, media and key")
    p.add_argument("--report-stats", default="no", help="accepted for compatibility with Synapse; ignored")
    return p.parse_args(argv)


def _setup_logging(config) -> None:
    from homeserver.logging_setup import setup_logging

    setup_logging(config)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    from homeserver.config import ConfigError, generate_config, load_config

    if args.generate_config:
        if not args.server_name or not args.config_path:
            print("--generate-config needs --server-name and --config-path", file=sys.stderr)
            return 2
        path = args.config_path[0]
        if os.path.exists(path):
            print(f"{path} exists; not overwriting", file=sys.stderr)
            return 1
        config_dir = os.path.dirname(os.path.abspath(path))
        data_dir = os.path.abspath(args.data_directory or config_dir)
        text = generate_config(server_name=args.server_name, data_dir=data_dir, config_dir=config_dir)
        os.makedirs(config_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"A config file has been generated in {path} for server name {args.server_name!r}.")
        return 0

    overrides = None
    if not args.config_path:
        # Zero-setup development run: built-in defaults (SQLite under ./data,
        # listener on 127.0.0.1:8008 only) plus open registration, so a local
        # client can sign up at once. Any -c file switches this off.
        overrides = {
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "public_baseurl": "http://localhost:8008/",
        }
    try:
        config = load_config(args.config_path, overrides=overrides)
    except ConfigError as e:
        print(f"Error in configuration: {e}", file=sys.stderr)
        return 1
    _setup_logging(config)

    from twisted.internet import reactor

    from homeserver import app

    if overrides is not None:
        logging.getLogger("homeserver").warning(
            "no -c config given: running with development defaults (SQLite in ./data, "
            "open registration on 127.0.0.1:8008 only)")
    from homeserver.http import access_log

    if access_log.writer() is not None:
        access_log.writer().attach_reactor(reactor)
    hs = app.build(config, reactor)
    app.start_listening(hs)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
