"""The ``kdlab`` command line: argparse -> configs -> the engine. With ``--json``, exactly one JSON object on
stdout; progress bars go to stderr. Any user error exits with status 2 and one line on stderr."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable

from kdlab.base.config import DistillConfig, TeacherConfig, TrainConfig
from kdlab.base.errors import KdlabError

COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints the whole usage; a one-liner is kinder to scripts
        print(f"kdlab: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def command(name: str):
    def add(fn):
        COMMANDS[name] = fn
        return fn

    return add


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kdlab", description="Knowledge distillation lab: teachers, students, experiments.")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("teacher", help="train (or load from the cache) a teacher")
    _data_args(t)
    t.add_argument("--arch", default="mlp:500", help="model spec, e.g. mlp:1200-1200, cnn:small")
    _train_args(t, prefix="", epochs=20)
    _common(t)

    d = sub.add_parser("distill", help="distil a student from a (cached) teacher")
    _data_args(d)
    d.add_argument("--teacher", default="mlp:500")
    d.add_argument("--student", default="mlp:100")
    d.add_argument("--loss", default="hinton", help="hinton, source, soft-only, logit-mse, dkd")
    d.add_argument("--temperature", "-T", type=float, default=4.0)
    d.add_argument("--alpha", type=float, default=0.9, help="weight of the soft (teacher) term, in [0, 1]")
    d.add_argument("--lam", type=float, default=None, help="λ of the `source` loss (default 0.1)")
    d.add_argument("--transfer-size", type=int, default=None, help="train the student on N training images")
    d.add_argument("--omit-class", type=int, action="append", default=[], help="leave a class out of the transfer set")
    d.add_argument("--no-labels", action="store_true", help="soft targets only: the transfer set has no labels")
    d.add_argument("--baseline", action="store_true", help="also train the same student without a teacher")
    _train_args(d, prefix="", epochs=5)
    _train_args(d, prefix="teacher-", epochs=20)
    _common(d)

    b = sub.add_parser("bench", help="benchmark one distillation epoch against a tutorial-style loop")
    b.add_argument("--repeats", type=int, default=5)
    _data_args(b, default="fashion-mnist")
    _common(b)

    e = sub.add_parser("experiment", help="run one of Hinton 2015's experiments (see kdlab.experiments)")
    e.add_argument("name", help="small-transfer, omitted-class, temperature-size, source-recipe, hinton-mnist")
    _data_args(e)
    e.add_argument("--seeds", type=int, default=3, help="how many seeds per arm (0, 1, ...)")
    _common(e)

    lt = sub.add_parser("loadtest", help="N concurrent app sessions against a real local server")
    lt.add_argument("--sessions", type=int, default=30)
    lt.add_argument("--timeout", type=float, default=600.0, help="seconds before unfinished sessions count as errors")
    lt.add_argument("--client", choices=["ws", "browser"], default="ws", help="ws: Streamlit's websocket protocol, no browser (measures the server alone); browser: Chromium tabs")
    _common(lt)

    c = sub.add_parser("cache", help="list or clear the teacher cache")
    c.add_argument("action", choices=["list", "clear"])
    _common(c)
    return p


def _data_args(p: argparse.ArgumentParser, default: str = "digits") -> None:
    p.add_argument("--dataset", default=default)
    p.add_argument("--data-dir", default=None, help="folder with the dataset's files (else KDLAB_DATA_DIR)")


def _train_args(p: argparse.ArgumentParser, prefix: str, epochs: int) -> None:
    p.add_argument(f"--{prefix}epochs", type=int, default=epochs)
    p.add_argument(f"--{prefix}lr", type=float, default=1e-3)
    p.add_argument(f"--{prefix}batch-size", type=int, default=128)
    p.add_argument(f"--{prefix}optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument(f"--{prefix}schedule", default="cosine", choices=["constant", "cosine", "step"])
    p.add_argument(f"--{prefix}seed", type=int, default=0)
    if not prefix:
        p.add_argument("--device", default="cpu", help="cpu, or cuda[:N] when a GPU is present")
        p.add_argument("--max-seconds", type=float, default=600.0, help="wall-clock bound of each training run")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def train_config(a: argparse.Namespace, prefix: str = "") -> TrainConfig:
    get = lambda name: getattr(a, (prefix + name).replace("-", "_"))  # noqa: E731
    return TrainConfig(epochs=get("epochs"), lr=get("lr"), batch_size=get("batch-size"), optimizer=get("optimizer"),
                       schedule=get("schedule"), seed=get("seed"), device=a.device, max_seconds=a.max_seconds)


def distill_config(a: argparse.Namespace) -> DistillConfig:
    return DistillConfig(
        dataset=a.dataset, teacher=a.teacher, student=a.student, loss=a.loss, temperature=a.temperature,
        alpha=a.alpha, loss_params={} if a.lam is None else {"lam": a.lam}, train=train_config(a),
        teacher_train=train_config(a, "teacher-"), transfer_size=a.transfer_size,
        omit_classes=tuple(a.omit_class), use_labels=not a.no_labels)


@command("teacher")
def _teacher(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.data import load_dataset
    from kdlab.cli.progress import Bars
    from kdlab.runs.teacher import get_teacher
    import time

    cfg = TeacherConfig(dataset=a.dataset, arch=a.arch, train=train_config(a))
    cfg.validate()
    data = load_dataset(a.dataset, a.data_dir)
    t0 = time.perf_counter()
    with Bars(disable=a.quiet) as bars:
        t = get_teacher(cfg, data, on_event=bars.callback("teacher"))
    return {"source": "cache" if t.source == "memory" else t.source, "test_accuracy": t.test_accuracy,
            "params": t.meta["params"], "seconds": time.perf_counter() - t0, "key": t.key,
            "warnings": t.warnings}


@command("distill")
def _distill(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.runs.distill import run_distill
    from kdlab.cli.progress import Bars

    with Bars(disable=a.quiet) as bars:
        result = run_distill(distill_config(a), scratch=a.baseline, data_dir=a.data_dir,
                             on_progress=bars.role_callback)
    return result.summary()


@command("bench")
def _bench(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.cli.bench import run_bench

    return run_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats, quiet=a.quiet)


@command("experiment")
def _experiment(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.experiments import run_experiment
    from kdlab.cli.progress import Bars

    with Bars(disable=a.quiet) as bars:
        return run_experiment(a.name, dataset=a.dataset, seeds=a.seeds, data_dir=a.data_dir,
                              on_progress=bars.role_callback)


@command("loadtest")
def _loadtest(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.serve.loadtest import run_loadtest

    return run_loadtest(sessions=a.sessions, timeout=a.timeout, quiet=a.quiet, client=a.client)


@command("cache")
def _cache(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.stores.teacher_cache import TeacherStore

    store = TeacherStore()
    if a.action == "clear":
        return {"removed": store.clear(), "folder": str(store.dir)}
    return {"folder": str(store.dir), "entries": store.entries()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="kdlab: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        out = COMMANDS[args.command](args)
    except KdlabError as exc:
        print(f"kdlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdlab: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
