"""The ``kdlab`` command line: one module per command under ``kdlab/cli/commands/``, each adding its parser and
returning a JSON-ready dict. Output: a short human summary by default, exactly one JSON object on stdout with
``--json``; progress bars go to stderr. Any user error exits with status 2 and one line on stderr."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from kdlab.base.errors import KdlabError

# The commands, in the order of `kdlab --help`; each is kdlab.cli.commands.<name> with add(subparsers).
COMMANDS = ("distill", "sweep", "presets", "teacher", "experiment", "playground", "prepare", "serve", "cache",
            "bench", "loadtest")
SIGPIPE_STATUS = 141  # what a shell reports for a program whose reader closed the pipe (`kdlab ... | head`)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        # No abbreviations: `kdlab sweep --seed 3` would silently mean --seeds 3 (three seeds, not seed 3)
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message: str) -> None:  # argparse prints the whole usage; a one-liner is kinder to scripts
        print(f"kdlab: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="kdlab", description="Knowledge distillation lab: teachers, students, experiments.")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"kdlab.cli.commands.{name}").add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="kdlab: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        out = args.run(args)
    except KdlabError as exc:
        print(f"kdlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdlab: interrupted", file=sys.stderr)
        return 130
    try:
        print(json.dumps(out) if getattr(args, "json", False) else args.show(out))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): nothing is wrong with the work that was done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit stays quiet
        return SIGPIPE_STATUS
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
