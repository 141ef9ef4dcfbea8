"""`python -m homeserver.config`: print the documented sample homeserver.yaml,
or with --generate a complete config for a new server.

    python -m homeserver.config > homeserver.yaml
    python -m homeserver.config --generate --server-name example.com \\
        --data-dir /var/lib/myelin --config-dir /etc/myelin > /etc/myelin/homeserver.yaml
    python -m homeserver.config --check homeserver.yaml local.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys

from homeserver.config.load import load_config
from homeserver.config.options import ConfigError
from homeserver.config.sample import generate_config, render_sample


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m homeserver.config", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--generate", action="store_true", help="write a config for a new server"
    )
    parser.add_argument("--server-name", default="localhost", help="with --generate")
    parser.add_argument("--data-dir", default="./data", help="with --generate")
    parser.add_argument("--config-dir", default=".", help="with --generate")
    parser.add_argument(
        "--check", nargs="+", metavar="FILE", help="load these files and report problems"
    )
    args = parser.parse_args(argv)
    if args.check:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        try:
            load_config(args.check)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("ok")
        return 0
    if args.generate:
        try:
            text = generate_config(
                server_name=args.server_name, data_dir=args.data_dir, config_dir=args.config_dir
            )
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    else:
        text = render_sample()
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
