"""``kdlab prepare``: train and cache, before class, every teacher the presets, the app's defaults, the Playground
and the experiments use (kdlab.runs.prepare), so no student waits for one during the lecture."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="train and cache every teacher the lab uses, before class",
                       description="Trains (or finds in the cache) every teacher that the presets, the app's "
                                   "default set-up, the Playground and the experiments use, then says what is "
                                   "cached and how much disk it takes. Run it once before class; Ctrl-C keeps "
                                   "the teachers finished so far.")
    p.add_argument("--dataset", action="append", default=None, metavar="NAME",
                   help="only the teachers of this dataset (repeat for several; default: every dataset they use)")
    p.add_argument("--only", action="append", default=None, metavar="SOURCE",
                   help="only the teachers one part of the lab uses: presets, app, playground or experiments "
                        "(repeat for several; default: all)")
    p.add_argument("--list", action="store_true", help="only say which teachers are cached and which would train")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads for every teacher (default: chosen per teacher; on a busy machine 1 can "
                        "be several times faster than 2)")
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    import time

    import kdlab.experiments  # noqa: F401  (registers the experiments' teacher source)
    from kdlab.base.errors import ConfigError
    from kdlab.runs.prepare import prepare_teachers, summary, teachers_to_prepare
    from kdlab.training.threads import pin_threads

    if a.threads is not None and not 1 <= a.threads <= 256:
        raise ConfigError(f"--threads must be a whole number in [1, 256], got {a.threads}")
    wanted = teachers_to_prepare(a.dataset, a.only)
    if a.threads is not None:
        pin_threads(a.threads)
    t0 = time.perf_counter()
    with _TeacherBars(len(wanted), disable=a.quiet or a.list) as bars:
        prepared = prepare_teachers(wanted, data_dir=a.data_dir, train=not a.list, on_event=bars.event,
                                    on_done=bars.done)
    out = summary(prepared)
    return out | {"listed_only": a.list, "datasets": a.dataset, "sources": a.only, "seconds": time.perf_counter() - t0}


class _TeacherBars:
    """A bar of the teachers done, and one of the teacher training now (closed when it ends)."""

    def __init__(self, total: int, disable: bool):
        from kdlab.cli.progress import Bars

        self.make, self.total, self.disable, self.n = Bars, total, disable, 0
        self.overall = Bars(disable=disable)
        self.current: tuple[int, Any] | None = None
        self._advance(0)  # the overall bar first, above each teacher's

    def _advance(self, n: int) -> None:
        from kdlab.training.engine import Event

        self.overall.role_callback("teachers", Event("step", 0, n, self.total))
        self.overall.bars["teachers"].unit = "teacher"

    def event(self, i: int, w, event) -> None:
        if self.current is None or self.current[0] != i:
            self._close_current()
            self.current = (i, self.make(disable=self.disable))
        self.current[1].role_callback(f"{w.dataset} {w.config.arch}", event)

    def done(self, i: int, prepared) -> None:
        self._close_current()
        self.n += 1
        self._advance(self.n)

    def _close_current(self) -> None:
        if self.current is not None:
            self.current[1].__exit__(None, None, None)
            self.current = None

    def __enter__(self) -> "_TeacherBars":
        return self

    def __exit__(self, *exc) -> None:
        self._close_current()
        self.overall.__exit__(*exc)


STATUS = {"cached": "cached", "trained": "trained now", "unavailable": "NO DATA", "failed": "FAILED",
          "missing": "would train"}


def show(out: dict[str, Any]) -> str:
    rows = [[STATUS[t["status"]], t["dataset"], t["arch"], t["budget"], fmt.pct(t["test_accuracy"]),
             fmt.size(t["size_bytes"]) if t["size_bytes"] else "", f"{t['seconds']:.1f} s" if t["seconds"] else "",
             _why(t["why"])] for t in out["teachers"]]
    lines = [fmt.table(["", "dataset", "teacher", "budget", "test acc.", "size", "time", "used by"], rows)] if rows \
        else ["no teacher of the lab uses the datasets and parts asked for"]
    cache = out["cache"]
    lines.append(f"{out['ready']} of {out['total']} teachers are in the cache ({fmt.size(out['prepared_bytes'])}); "
                 f"the whole cache {cache['folder']}: {cache['entries']} entries, {fmt.size(cache['size_bytes'])}"
                 + ("" if out["listed_only"] else f"; {out['seconds']:.0f} s"))
    for dataset, message in out["unavailable"].items():
        lines.append(f"not prepared: {dataset} is not available: {message}")
    lines += [f"{t['dataset']} {t['arch']}: {t['message']}" for t in out["teachers"]
              if t["message"] and t["status"] not in ("unavailable", "missing")]
    return "\n".join(lines)


def _why(why: list[str], most: int = 3) -> str:
    return ", ".join(why[:most]) + (f" and {len(why) - most} more" if len(why) > most else "")
