"""The ``quovadis`` command: the parser, assembled from one module per command in ``zoo/cli/``.

Each command module has ``add_parser(sub)``, which registers the command and sets ``func`` to its handler
(``run``, or ``run_<subcommand>`` where a command has subcommands).
"""
from __future__ import annotations

import argparse
import sys

from zoo.cli import (
    convert,
    export,
    features,
    flow,
    fvd,
    fvd_stats,
    inflate,
    predict,
    push,
    train,
    zoo,
)

COMMANDS = (inflate, convert, predict, zoo, push, train, fvd, fvd_stats, features, flow, export)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("quovadis")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quovadis", description="2D->3D inflation, I3D zoo and converters")
    parser.add_argument("--version", action="version", version=f"quovadis {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE overrides may sit anywhere among train's options
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (ValueError, TypeError, RuntimeError, KeyError, OSError) as e:
        print(f"quovadis {args.command}: error: {e}", file=sys.stderr)
        return 2


