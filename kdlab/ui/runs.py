"""The Runs page's pieces: this session's runs and those kept on disk, a table, overlays and downloads."""
from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import streamlit as st

from kdlab.plots import figures as plots
from kdlab.base.errors import KdlabError
from kdlab.ui import layout, resources, state


def all_runs() -> list[dict[str, Any]]:
    """This session's runs first (some may be unsaved), then the stored ones not among them; newest first."""
    mine = [{**r, "_session": True} for r in state.runs()]
    seen = {r.get("id") for r in mine if r.get("id")}
    stored = [r for r in resources.run_store().list() if r["id"] not in seen]
    return sorted(mine + stored, key=lambda r: r.get("created", 0), reverse=True)


def key(run: dict[str, Any]) -> str:
    """Stable across reruns: the stored id, else (an unsaved session run) its creation time."""
    return run.get("id") or f"session-{run.get('created', 0)}"


def name(run: dict[str, Any]) -> str:
    when = time.strftime("%d %b %H:%M:%S", time.localtime(run.get("created", 0)))
    return f"{when} · {run['label']}"


def table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in runs:
        scratch = r.get("scratch")
        d = r["distilled"]["test_accuracy"]
        rows.append({"when": name(r).split(" · ")[0], "run": r["label"],
                     "teacher %": 100 * r["teacher"]["test_accuracy"],
                     "distilled %": 100 * d, "scratch %": 100 * scratch["test_accuracy"] if scratch else None,
                     "gain (points)": 100 * (d - scratch["test_accuracy"]) if scratch else None,
                     "ended": r.get("reason", ""), "this session": bool(r.get("_session")),
                     "saved": bool(r.get("id"))})
    return pd.DataFrame(rows)


def overlay(runs: list[dict[str, Any]]) -> None:
    by_key = {key(r): r for r in runs}
    chosen = st.multiselect("Overlay the test-accuracy curves of", list(by_key), default=list(by_key)[:2],
                            format_func=lambda k: name(by_key[k]), key="runs.overlay")
    picked = [by_key[k] for k in chosen if k in by_key]
    if picked:
        fig = plots.overlay_curves([{"label": r["label"], "distilled": r["distilled"]["history"],
                                     "scratch": (r.get("scratch") or {}).get("history")} for r in picked])
        layout.chart(fig, key="overlay")
        st.caption("One colour per run: solid the distilled student, dashed the scratch student.")


def downloads(runs: list[dict[str, Any]]) -> None:
    by_key = {key(r): r for r in runs}
    chosen = st.selectbox("Download a run", list(by_key), format_func=lambda k: name(by_key[k]), key="runs.download")
    run = by_key.get(chosen, runs[0])
    left, right = st.columns(2)
    slug = run.get("id") or "unsaved"
    left.download_button("Config and results (JSON)", _json(run), file_name=f"kdlab-run-{slug}.json",
                         mime="application/json", key="dl_json", on_click="ignore", width="stretch")
    if run.get("id"):
        right.download_button("Student weights (safetensors)", _weights(run["id"]),
                              file_name=f"kdlab-student-{slug}.safetensors",
                              mime="application/octet-stream", key="dl_weights", on_click="ignore", width="stretch")
    else:
        right.caption("This run was not saved to disk, so its weights cannot be downloaded.")


def _json(run: dict[str, Any]) -> str:
    keep = {k: v for k, v in run.items() if k not in ("outputs", "_session", "files")}
    return json.dumps(keep, indent=1)


def _weights(run_id: str):
    def load() -> bytes:  # read on click, not on every rerun
        try:
            return resources.run_store().weights_bytes(run_id)
        except KdlabError as exc:
            return f"error: {exc}".encode()

    return load
