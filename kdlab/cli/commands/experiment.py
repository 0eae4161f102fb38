"""``kdlab experiment NAME``: one of Hinton 2015's experiments over several seeds, here or on a Ray cluster
(``--ray``)."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.cli import args as cli_args
from kdlab.cli import ray_option
from kdlab.cli import show as fmt
from kdlab.experiments import EXPERIMENTS, MAX_SEEDS, experiment_names


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run one of Hinton 2015's experiments (see kdlab.experiments)")
    p.add_argument("name", help=f"one of: {', '.join(experiment_names())}")
    p.add_argument("--dataset", default="digits", help="the dataset (default: digits; each experiment lists "
                                                       "the ones it has settings for)")
    p.add_argument("--seeds", type=int, default=3, help=f"seeds 0, 1, ... per arm, 1..{MAX_SEEDS} (default: 3)")
    ray_option.add_flag(p)
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.cli.progress import Bars
    from kdlab.experiments import check_request, run_experiment

    if a.ray:  # what run_experiment refuses first, refused before a cluster starts
        check_request(a.name, a.dataset, a.seeds)
    with ray_option.executor(a.ray) as executor, Bars(disable=a.quiet) as bars:
        out = run_experiment(a.name, dataset=a.dataset, seeds=a.seeds, data_dir=a.data_dir,
                             on_progress=bars.role_callback, executor=executor)
    return out | {"ray": a.ray}


def show(out: dict[str, Any]) -> str:
    rows = [[name, fmt.spread(arm), f"{arm['seconds']:.1f} s"] for name, arm in out["arms"].items()]
    head = (f"{EXPERIMENTS.get(out['experiment']).title} on {out['dataset']} (seeds {out['seeds']}), teacher "
            f"{out['teacher']['arch']} at {fmt.pct(out['teacher']['test_accuracy'])}; {out['seconds']:.0f} s"
            f"{' on Ray (' + out['ray'] + ')' if out.get('ray') else ''}")
    notes = [f"note: {n}" for n in out["notes"]]
    return "\n".join([head, fmt.table(["arm", "test accuracy (mean ± std, per seed)", "training"], rows), *notes])
