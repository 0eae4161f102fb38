"""The Sweep page's pieces: the grid widgets, the pool job, its progress, and the heatmaps."""
from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from kdlab.plots import figures as plots
from kdlab.base.config import to_dict
from kdlab.base.errors import ConfigError
from kdlab.serve.jobs import Job
from kdlab.runs.sweep import MAX_CELLS, pivot, run_sweep, to_csv
from kdlab.ui import layout, runner, settings, state

SLOT = "sweep"
T_OPTIONS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 20.0, 30.0)
ALPHA_OPTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def grid_ui() -> tuple[list[float], list[float], list[int]]:
    a, b, c = st.columns([3, 3, 1])
    temps = a.multiselect("Temperatures T", T_OPTIONS, default=[1.0, 2.0, 4.0, 8.0], key="sweep.T")
    alphas = b.multiselect("α values", ALPHA_OPTIONS, default=[0.5, 0.9], key="sweep.alpha")
    seeds = c.number_input("Seeds", 1, 5, value=1, key="sweep.seeds", help="Seeds 0, 1, …: each cell is averaged.")
    return sorted(temps), sorted(alphas), list(range(int(seeds)))


def start(lab: settings.LabSettings, temps: list[float], alphas: list[float], seeds: list[int]) -> Job:
    cfg, data = lab.config, lab.data
    total = len(temps) * len(alphas) * len(seeds)
    if total > MAX_CELLS:
        raise ConfigError(f"{total} runs is more than the {MAX_CELLS} a sweep may have; drop some values")

    def fn(job: Job) -> dict[str, Any]:
        def progress(role: str, event: Any) -> None:
            if role in ("cell", "teacher") or event.kind == "epoch":  # few events: the job's buffer is bounded
                job.emit((role, event))

        rows = run_sweep(cfg, temps, alphas, seeds, data=data, on_progress=progress, should_stop=job.should_stop)
        return {"rows": rows, "config": cfg, "total": total, "finished": time.time()}

    return runner.submit(SLOT, fn, label="sweep")


def collect() -> None:
    runner.collect(SLOT, _keep)
    runner.show_error(SLOT)


def _keep(result: dict[str, Any]) -> None:
    st.session_state[state.SWEEP] = result


def watch() -> None:
    runner.watch(SLOT, _progress)


def _progress(job: Job) -> None:
    events = list(job.events)
    cells = [payload for role, payload in events if role == "cell"]
    last = events[-1] if events else None
    if last is not None and last[0] == "teacher":
        st.progress(last[1].step / max(1, last[1].total_steps), text="Training the teacher (once for the sweep)…")
    else:
        done, total = (cells[-1][0], cells[-1][1]) if cells else (0, 1)
        st.progress(done / total, text=f"{done} of {total} runs done")
    if cells:
        st.dataframe(table([row for _, _, row in cells]), hide_index=True, key="sweep_live", column_config=_PERCENT)


_PERCENT = {c: st.column_config.NumberColumn(format="%.1f") for c in ("student %", "scratch %", "gain (points)",
                                                                       "agreement %")}


def table(rows: list[dict[str, float]]) -> pd.DataFrame:
    """The rows for people: accuracies in percent (the CSV keeps fractions)."""
    return pd.DataFrame([{"T": r["temperature"], "α": r["alpha"], "seed": r["seed"],
                          "student %": 100 * r["student_accuracy"], "scratch %": 100 * r["scratch_accuracy"],
                          "gain (points)": 100 * r["gain"], "agreement %": 100 * r["agreement"],
                          "seconds": round(r["seconds"], 2)} for r in rows])


def results(sweep: dict[str, Any], lab: settings.LabSettings) -> None:
    rows = sweep["rows"]
    if not rows:
        st.info("The sweep stopped before its first run finished.")
        return
    changed = settings.changed_fields(to_dict(sweep["config"]), lab.config)
    changed = [c for c in changed if c not in ("T", "alpha", "seed", "baseline")]
    if changed:
        st.warning(f"**Stale**: the pair's settings changed since this sweep ({', '.join(changed)}).", icon="⚠️")
    if len(rows) < sweep["total"]:
        st.info(f"The sweep was stopped: {len(rows)} of {sweep['total']} runs finished.")
    left, right = st.columns(2)
    accuracy = plots.sweep_heatmap(*pivot(rows, "student_accuracy"), "Distilled student: test accuracy (%)")
    layout.chart(accuracy, key="sweep_acc", where=left)
    left.caption("Where is the student best? Each cell is the mean over seeds.")
    gain = plots.sweep_heatmap(*pivot(rows, "gain"), "Gain over the scratch student (points)", diverging=True)
    layout.chart(gain, key="sweep_gain", where=right)
    right.caption("Orange: distillation beat the same student trained on labels alone; green: it lost.")
    st.dataframe(table(rows), hide_index=True, key="sweep_table", column_config=_PERCENT)
    st.download_button("Download CSV", to_csv(rows), file_name="kdlab-sweep.csv", mime="text/csv",
                       key="sweep_csv", on_click="ignore")

