"""The `qunyun` command: API tokens and Kafka topics."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="qunyun", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="print a new API token and its config entry")
    token.add_argument("--name", required=True, help="who the token is for")
    token.add_argument("--groups", default="*", help="comma-separated group ids, or *")
    token.add_argument("--scopes", default="read", help="comma-separated: read,write")

    commands.add_parser("topics", help="create the Kafka topics (KAFKA_BOOTSTRAP_SERVERS)")

    args = parser.parse_args(argv)
    if args.command == "token":
        from services.common.auth import new_token

        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        if not scopes or set(scopes) - {"read", "write"}:
            parser.error("--scopes takes read and/or write")
        value, entry = new_token(args.name, [g.strip() for g in args.groups.split(",")], scopes)
        print(
            f"token (shown once, store it safely): {value}\n\n"
            "# The running services reload the QUNYUN_CONFIG file when it changes or on SIGHUP:\n"
            "# no restart needed (`make run` uses var/dev-config.toml).\n"
            f"# add to QUNYUN_CONFIG:\n{entry}"
        )
        return 0
    from services.common.kafka.admin import ensure_topics
    from services.common.settings import get_settings

    ensure_topics(get_settings())
    return 0


if __name__ == "__main__":
    sys.exit(main())
