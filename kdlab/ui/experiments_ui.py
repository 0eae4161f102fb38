"""The Experiments page's pieces: the pickers, the pool job of one experiment, its progress, and its report
(figures, the bias slider, the paper's numbers beside ours). Reuses ``runner`` and ``resources``."""
from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from kdlab.plots import experiments as plots
from kdlab.base.errors import DataUnavailableError
from kdlab.base.settings import Setting
from kdlab.experiments import EXPERIMENTS, experiment_names, run_experiment
from kdlab.serve.jobs import Job
from kdlab.ui import forms, layout, resources, runner
from kdlab.ui.i18n import N_, t

SLOT = "experiment"
RESULTS = "kd.experiments"  # {"name|dataset": report}: the last report of each experiment and dataset
EMIT_SECONDS = 0.25  # step events reach the job's buffer at most this often (epoch and teacher events always)
MAX_SEEDS = 5


@dataclass(frozen=True)
class Choice:
    """Which experiment the page shows; every field is in its URL."""

    name: str = "small-transfer"
    dataset: str = "digits"
    seeds: int = 3


CHOICE = "kd.experiments.choice"
CHOICE_SETTINGS = [
    Setting("name", "name", N_("Experiment"), "", "choice", options=experiment_names),
    Setting("dataset", "dataset", N_("Dataset"), N_("digits runs in well under a minute; Fashion-MNIST takes minutes "
            "per experiment."), "choice", options=lambda: ["digits", "fashion-mnist", "mnist"]),
    Setting("seeds", "seeds", N_("Seeds"), N_("Seeds 0, 1, …: mean ± std."), "int", 1, MAX_SEEDS, 1),
]


def pick_ui() -> tuple[str, str, int]:
    choice = st.session_state.get(CHOICE, Choice())
    if (linked := forms.read_url(CHOICE_SETTINGS, choice, Choice())) is not None:
        choice = linked
        forms.reset(CHOICE_SETTINGS, "exp")
    left, mid, right = st.columns([3, 2, 1])
    choice = forms.draw(CHOICE_SETTINGS, choice, "exp", left, names=["name"],
                        formats={"name": lambda n: t(EXPERIMENTS.get(n).title)})
    datasets = sorted(EXPERIMENTS.get(choice.name).settings, key=lambda d: (d != "digits", d))  # digits: offline, fast
    if choice.dataset not in datasets:
        choice = dataclasses.replace(choice, dataset=datasets[0])
    choice = forms.draw(CHOICE_SETTINGS, choice, "exp", mid, names=["dataset"], options={"dataset": datasets})
    choice = forms.draw(CHOICE_SETTINGS, choice, "exp", right, names=["seeds"])
    st.session_state[CHOICE] = choice
    forms.write_url(CHOICE_SETTINGS, choice)
    return choice.name, choice.dataset, choice.seeds


def describe(name: str, dataset: str, seeds: int) -> None:
    exp = EXPERIMENTS.get(name)
    with st.expander(t("What this experiment shows: {title}", title=t(exp.title))):
        st.markdown(t(exp.about))
        st.caption(t("Reference: {source}", source=exp.paper["source"]))
        st.markdown(t("Settings on this dataset (from `kdlab.experiments`), and the same run from a terminal:"))
        command = ["kdlab", "experiment", name, "--dataset", dataset, "--seeds", str(seeds), "--json"]
        st.code(shlex.join(command), language="bash")
        st.json({k: v for k, v in vars(exp.settings_for(dataset)).items()}, expanded=False)


def start(name: str, dataset: str, seeds: int) -> Job:
    try:
        data = resources.dataset(dataset)
    except DataUnavailableError:
        if dataset not in EXPERIMENTS.get(name).fallback:
            raise
        data = None  # run_experiment falls back (hinton-mnist without MNIST) and says so in its notes

    def fn(job: Job) -> dict[str, Any]:
        last = [0.0]

        def progress(role: str, event: Any) -> None:
            now = time.monotonic()
            if event.kind != "step" or now - last[0] >= EMIT_SECONDS:
                last[0] = now
                job.emit((role, event))

        report = run_experiment(name, dataset=dataset, seeds=seeds, data=data, on_progress=progress,
                                should_stop=job.should_stop)
        return report

    return runner.submit(SLOT, fn, label=t("experiment {name}", name=name))


def collect() -> None:
    runner.collect(SLOT, _keep)


def _keep(report: dict[str, Any]) -> None:
    st.session_state.setdefault(RESULTS, {})[f"{report['experiment']}|{report['requested_dataset']}"] = report


def show_error() -> None:
    runner.show_error(SLOT)


def result(name: str, dataset: str) -> dict[str, Any] | None:
    return st.session_state.get(RESULTS, {}).get(f"{name}|{dataset}")


def watch() -> None:
    runner.watch(SLOT, _progress)


def _progress(job: Job) -> None:
    events = list(job.events)
    if not events:
        st.progress(0.0, text=t("Starting…"))
        return
    role, ev = events[-1]
    frac = min(1.0, ev.step / max(1, ev.total_steps))
    if role == "teacher":
        st.progress(frac, text=t("Training the teacher (once; then it is cached): epoch {epoch}", epoch=ev.epoch))
    else:
        st.progress(frac, text=t("Student run {run} of {runs}", run=ev.metrics.get("run", "?"),
                                 runs=ev.metrics.get("runs", "?")))


def show(report: dict[str, Any]) -> None:
    for note in report["notes"]:
        st.info(note)
    st.caption(t("{dataset}, seeds {seeds}, {seconds:.0f} s; teacher {arch} at {accuracy:.1f} %.",
                 dataset=report["dataset"], seeds=report["seeds"], seconds=report["seconds"],
                 arch=report["teacher"]["arch"], accuracy=100 * report["teacher"]["test_accuracy"]))
    headline(report)
    for i, fig in enumerate(plots.figures(report)):
        layout.chart(fig, key=f"exp.fig{i}")
    if report["experiment"] == "omitted-class":
        bias_panel(report)
    st.markdown(t("**Ours** (test accuracy, %)"))  # static tables: they wrap on a projector, a dataframe clips
    st.table(_headed(arms_table(report).set_index(ARM)))
    st.markdown(t("**The paper's reference numbers** (not measured here)"))
    st.table(_headed(paper_table(report["paper"]).set_index(WHAT)))
    st.download_button(t("Download the report (JSON)"), json.dumps(report, indent=1), key="exp.download",
                       file_name=f"kdlab-{report['experiment']}-{report['dataset']}.json", mime="application/json",
                       on_click="ignore")


def headline(report: dict[str, Any]) -> None:
    """The numbers to read first, as metrics: scratch against distilled, or each curve's best temperature."""
    arms, items = report["arms"], []
    if "scratch" in arms and "distilled" in arms:
        gain = 100 * (arms["distilled"]["mean"] - arms["scratch"]["mean"])
        items += [(t("scratch student"), f"{100 * arms['scratch']['mean']:.1f} %", None),
                  (t("distilled student"), f"{100 * arms['distilled']['mean']:.1f} %",
                   t("{gain:+.1f} points", gain=gain))]
    if "omitted_class_accuracy" in report:
        acc, omitted = report["omitted_class_accuracy"], t(report["omitted_class"])
        items += [(t("“{name}” right, scratch", name=omitted), f"{100 * acc['scratch']:.1f} %", None),
                  (t("“{name}” right, distilled", name=omitted), f"{100 * acc['distilled']:.1f} %", None)]
    for curve in report.get("curves", []):
        items.append((t("best T for {student}", student=curve["student"]), f"{curve['best_temperature']:g}", None))
    if "best_arm" in report:
        items.append((t("best arm"), report["best_arm"], None))
    for col, (label, value, delta) in zip(st.columns(max(1, len(items))), items):
        col.metric(label, value, delta)


def bias_panel(report: dict[str, Any]) -> None:
    """The bias slider: every value reads the stored curve of one trained student, so it redraws instantly."""
    name = t(report["omitted_class"])
    biases = [p["bias"] for p in report["bias_curve"]]
    bias = st.select_slider(t("Bias added to the “{name}” logit at test time", name=name), biases, value=biases[0],
                            key="exp.bias")
    p, zero, paper = plots.bias_point(report, bias), report["bias_curve"][0], report["paper"]
    st.caption(t("With +{bias:g}: {right:.1f} % of the test “{name}” images right, {overall:.2f} % overall "
                 "({errors} errors, {class_errors} on “{name}”). With no bias: {right0:.1f} % and {overall0:.2f} %. "
                 "The paper (MNIST, 3s omitted): {paper_right:.1f} % of the 3s right, {paper_biased:.1f} % with "
                 "+{paper_bias:g}.", bias=p["bias"], right=100 * p["class_accuracy"], name=name,
                 overall=100 * p["overall_accuracy"], errors=p["errors"], class_errors=p["class_errors"],
                 right0=100 * zero["class_accuracy"], overall0=100 * zero["overall_accuracy"],
                 paper_right=100 * paper["class_accuracy"], paper_biased=100 * paper["class_accuracy_with_bias"],
                 paper_bias=paper["bias"]))
    layout.chart(plots.per_class_bars(report, bias), key="exp.classes")  # one a row: ten classes need the width
    layout.chart(plots.bias_tradeoff(report, bias), key="exp.tradeoff")


def paper_table(paper: dict[str, Any]) -> pd.DataFrame:
    """The paper's numbers as rows (what, value), nested entries flattened: 'test_errors / teacher'."""
    rows = []
    for key, value in paper.items():
        if key == "source":
            continue
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, v in items:
            name = key.replace("_", " ") + (f" / {sub}" if sub else "")
            rows.append({WHAT: name, VALUE: ", ".join(map(str, v)) if isinstance(v, list) else str(v)})
    rows.append({WHAT: "source", VALUE: paper["source"]})
    return pd.DataFrame(rows)


def arms_table(report: dict[str, Any]) -> pd.DataFrame:
    rows = [{ARM: arm, MEAN: round(100 * a["mean"], 2), STD: round(100 * a["std"], 2),
             PER_SEED: ", ".join(f"{100 * v:.1f}" for v in a["per_seed"]), SECONDS: round(a["seconds"], 1)}
            for arm, a in report["arms"].items()]
    return pd.DataFrame(rows)


# The tables' headers, English in the data; shown in the reader's language (_headed). Arms and the paper's keys
# are names of the report (as in its JSON and the CLI), so they are shown as they are.
ARM, MEAN, STD, PER_SEED, SECONDS = N_("arm"), N_("mean"), N_("std"), N_("per seed"), N_("seconds")
WHAT, VALUE = N_("what"), N_("value")


def _headed(table: pd.DataFrame) -> pd.DataFrame:
    table = table.rename(columns=t)
    table.index.name = t(table.index.name)
    return table
