"""``kdlab cache list|clear``: the teacher cache. Clearing asks first (or needs --yes off a terminal)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from kdlab.base.errors import KdlabError
from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list or clear the teacher cache")
    p.add_argument("action", choices=["list", "clear"])
    p.add_argument("--yes", action="store_true", help="clear without asking (needed when stdin is not a terminal)")
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.stores.teacher_cache import TeacherStore

    store = TeacherStore()
    entries = store.entries()
    if a.action == "list":
        return {"action": "list", "folder": str(store.dir), "entries": entries}
    if entries and not a.yes:
        _confirm(len(entries), sum(e["size_bytes"] for e in entries), store.dir)
    report = store.clear_report()
    return {"action": "clear", "folder": str(store.dir), "removed": len(report.removed),
            "removed_keys": report.removed, "not_removed": report.failed}


def _confirm(n: int, n_bytes: int, folder) -> None:
    question = f"delete {n} cached teacher(s), {fmt.size(n_bytes)}, in {folder}?"
    if not sys.stdin.isatty():  # `kdlab cache list | kdlab cache clear` must not empty the cache unasked
        raise KdlabError(f"cache clear would {question[:-1]}; pass --yes to confirm (stdin is not a terminal)")
    answer = input(f"kdlab: {question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise KdlabError("nothing was deleted")


def show(out: dict[str, Any]) -> str:
    if out["action"] == "clear":
        kept = [f"not removed: {key}: {why}" for key, why in out["not_removed"].items()]
        return "\n".join([f"removed {out['removed']} cached teacher(s) from {out['folder']}", *kept])
    rows = [[e["key"], e["dataset"], e["arch"], fmt.pct(e["test_accuracy"]), fmt.size(e["size_bytes"]),
             e["state"] + (f": {e['problem']}" if e["problem"] else "")] for e in out["entries"]]
    total = sum(e["size_bytes"] for e in out["entries"])
    head = f"teacher cache {out['folder']}: {len(rows)} entries, {fmt.size(total)}"
    return head if not rows else head + "\n" + fmt.table(["key", "dataset", "arch", "test acc.", "size", "state"], rows)
