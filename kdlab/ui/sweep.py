"""The Sweep page's pieces: the grid widgets (kdlab.runs.sweep.GRID_SETTINGS), the pool job, its progress, and the
heatmaps."""
from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from kdlab.base.lab import Lab
from kdlab.plots import figures as plots
from kdlab.runs.lab import stale_settings
from kdlab.runs.sweep import GRID_SETTINGS, Grid, pivot, run_sweep, to_csv
from kdlab.serve.jobs import Job
from kdlab.ui import forms, layout, runner, settings, state
from kdlab.ui.i18n import N_, t

SLOT = "sweep"
GRID = "kd.sweep.grid"  # the session's Grid
PREFIX = "sweep"  # the grid widgets' keys: "sweep.temperatures", ...
PAIR = ("dataset", "teacher", "student", "loss", "lam", "beta_tckd", "beta_nckd", "steps", "epochs", "lr",
        "transfer_size", "teacher_epochs")  # the lab's settings a sweep keeps fixed (T, α and seed are the grid)


def grid_ui() -> Grid:
    current = st.session_state.get(GRID, Grid())
    if (linked := forms.read_url(GRID_SETTINGS, current, Grid())) is not None:
        current = linked
        forms.reset(GRID_SETTINGS, PREFIX)
    a, b, c = st.columns([3, 3, 1])
    boxes = iter((a, b, c))
    for s in GRID_SETTINGS:  # one widget a column
        current = forms.draw([s], current, PREFIX, next(boxes), names=[s.name])
    st.session_state[GRID] = current
    forms.write_url(GRID_SETTINGS, current)
    return current


def start(ls: settings.LabSettings, grid: Grid) -> Job:
    cfg, data = ls.config, ls.data
    total = len(grid.temperatures) * len(grid.alphas) * grid.seeds  # run_sweep refuses more than MAX_CELLS

    def fn(job: Job) -> dict[str, Any]:
        def progress(role: str, event: Any) -> None:
            if role in ("cell", "teacher") or event.kind == "epoch":  # few events: the job's buffer is bounded
                job.emit((role, event))

        rows = run_sweep(cfg, grid.temperatures, grid.alphas, grid.seed_list(), data=data, on_progress=progress,
                         should_stop=job.should_stop)
        return {"rows": rows, "config": cfg, "total": total, "finished": time.time()}

    return runner.submit(SLOT, fn, label=t("sweep"))


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
        st.progress(last[1].step / max(1, last[1].total_steps), text=t("Training the teacher (once for the sweep)…"))
    else:
        done, total = (cells[-1][0], cells[-1][1]) if cells else (0, 1)
        st.progress(done / total, text=t("{done} of {total} runs done", done=done, total=total))
    if cells:
        st.dataframe(table([row for _, _, row in cells]), hide_index=True, key="sweep_live", column_config=_percent())


SEED, STUDENT, SCRATCH, GAIN = N_("seed"), N_("student %"), N_("scratch %"), N_("gain (points)")  # table headers


def _percent() -> dict[str, Any]:
    return {t(c): st.column_config.NumberColumn(format="%.1f") for c in (STUDENT, SCRATCH, GAIN)}


def table(rows: list[dict[str, float]]) -> pd.DataFrame:
    """The rows for people: accuracies in percent, the columns that fit a projector (the CSV has them all), headed
    in the reader's language."""
    return pd.DataFrame([{"T": r["temperature"], "α": r["alpha"], t(SEED): r["seed"],
                          t(STUDENT): 100 * r["student_accuracy"], t(SCRATCH): 100 * r["scratch_accuracy"],
                          t(GAIN): 100 * r["gain"]} for r in rows])


def results(sweep: dict[str, Any], ls: settings.LabSettings) -> None:
    rows = sweep["rows"]
    if not rows:
        st.info(t("The sweep stopped before its first run finished."))
        return
    changed = stale_settings(Lab(sweep["config"]), ls.lab, ignore=("temperature", "alpha", "seed", "seeds", "scratch"))
    if changed:
        st.warning(t("**Stale**: the pair's settings changed since this sweep ({settings}).",
                     settings=", ".join(t(label) for label in changed)), icon="⚠️")
    if len(rows) < sweep["total"]:
        st.info(t("The sweep was stopped: {finished} of {total} runs finished.", finished=len(rows),
                  total=sweep["total"]))
    left, right = st.columns(2)
    left.markdown(t("**Distilled student: test accuracy (%)**"))  # titles as text: they wrap, a chart's are cut
    layout.chart(plots.sweep_heatmap(*pivot(rows, "student_accuracy"), ""), key="sweep_acc", where=left)
    left.caption(t("Where is the student best? Each cell is the mean over seeds; the colour scale runs 0 to 100 %."))
    right.markdown(t("**Gain over the scratch student (points)**"))
    layout.chart(plots.sweep_heatmap(*pivot(rows, "gain"), "", diverging=True), key="sweep_gain", where=right)
    right.caption(t("Purple: distillation beat the same student trained on labels alone; gold: it lost."))
    st.dataframe(table(rows), hide_index=True, key="sweep_table", column_config=_percent())
    st.download_button(t("Download CSV"), to_csv(rows), file_name="kdlab-sweep.csv", mime="text/csv",
                       key="sweep_csv", on_click="ignore")
