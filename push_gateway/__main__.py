"""``python -m push_gateway -c push_gateway.yaml``: read the config, set up
logging, build the gateway, run the reactor until SIGTERM/SIGINT.

``python -m push_gateway --generate-vapid-key PATH`` writes a new VAPID
private key for a ``webpush`` app and prints the public key clients
subscribe with.
"""

import argparse
import logging
import os
import sys
import time

from push_gateway.errors import ConfigError


def _generate_vapid_key(path: str) -> int:
    from py_vapid import Vapid02

    from push_gateway.pushkins.webpush import vapid_public_key

    if os.path.exists(path):
        print(f"{path} already exists; not overwriting it", file=sys.stderr)
        return 1
    vapid = Vapid02()
    vapid.generate_keys()
    vapid.save_key(path)
    print(f"Wrote {path}. Application server (public) key for clients:")
    print(vapid_public_key(path))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the gateway; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m push_gateway", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-c", "--config", default="push_gateway.yaml", help="config file")
    parser.add_argument(
        "--generate-vapid-key", metavar="PATH", help="write a new VAPID key to PATH and exit"
    )
    args = parser.parse_args(argv)
    if args.generate_vapid_key:
        return _generate_vapid_key(args.generate_vapid_key)

    from push_gateway.config import load_config_file
    from push_gateway.logs import setup_logging

    try:
        config, warnings = load_config_file(args.config)
    except ConfigError as e:
        print(f"push_gateway: invalid config: {e}", file=sys.stderr)
        return 1
    setup_logging(config.log.level, config.log.format)
    logger = logging.getLogger("push_gateway")
    for warning in warnings:
        logger.warning("Config: %s", warning)

    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from push_gateway.app import PushGateway

    started = time.monotonic()
    try:
        gateway = PushGateway(config, reactor)
        gateway.start()
    except ConfigError as e:
        logger.error("Invalid config: %s", e)
        return 1
    except OSError as e:  # e.g. the port is taken
        logger.error("Cannot start: %s", e)
        return 1
    except Exception:
        logger.exception("Cannot start")
        return 1
    logger.info("Started in %.0f ms", (time.monotonic() - started) * 1000)

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromCoroutine(gateway.stop())
    )
    reactor.run()
    logger.info("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
