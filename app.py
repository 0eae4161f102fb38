"""kdlab: the Streamlit app. `streamlit run app.py`

Every page runs through this file: it configures the page and the navigation (kdlab.ui.layout), runs the
chosen page, then starts the once-per-process set-up (kdlab.ui.process). The home page is ``home`` below.
"""
from pathlib import Path

import streamlit as st

from kdlab.runs.presets import get_preset, preset_names
from kdlab.ui import layout, state  # light: the home page must not wait for torch to import

ROOT = Path(__file__).parent
PAGES = {"Distill": "Train a student live, beside a scratch twin; results and confusion matrices.",
         "Temperature": "Watch soft targets flatten as T rises, on the teacher's cached outputs.",
         "Sweep": "A grid over T × α (× seeds): where does distillation help most?",
         "Runs": "Every finished run, overlaid; download configs, results and weights.",
         "Experiments": "Hinton 2015's experiments, several seeds each."}


def home() -> None:
    layout.header("kdlab: a knowledge-distillation lab",
                  "Train a small student network to imitate a large teacher, and watch it happen.")
    cfg, _ = state.lab_config()
    st.markdown(
        "A trained **teacher** knows more than its top answer: its probabilities say which wrong classes look "
        "alike (a 7 resembles a 1 more than an 8). Softened by a **temperature** T, its logits `t` become "
        "*soft targets* `softmax(t/T)`, and a smaller **student** with logits `s` learns from them "
        "(Hinton, Vinyals & Dean, 2015):")
    st.image(str(layout.ASSETS / "kd_diagram.svg"), width=760)
    st.latex(loss_latex(cfg.loss, cfg.temperature, cfg.alpha, cfg.loss_params.get("lam", 0.1)))
    st.caption(f"With the current settings ({cfg.loss} loss, T = {cfg.temperature:g}, α = {cfg.alpha:g}). "
               "α weights the soft term; T² keeps its gradients on the same scale whatever T is.")

    st.subheader("Start from a preset")
    names = preset_names()
    for col, name in zip(st.columns(len(names)), names):
        preset = get_preset(name)
        col.button(name, key=f"preset.{name}", on_click=state.apply_preset, args=(name,), width="stretch",
                   type="primary" if state.lab().get("preset") == name else "secondary")
        col.caption(preset.summary)

    st.subheader("The lab")
    for path, title in layout.pages(ROOT):
        st.page_link(str(path), label=f"**{title}**: {PAGES.get(title, '')}", icon=layout.ICONS.get(title))
    layout.explain("How the lab works", "home")


def loss_latex(loss: str, t: float, alpha: float, lam: float) -> str:
    kl = r"\mathrm{KL}\big(\mathrm{softmax}(t/T)\,\|\,\mathrm{softmax}(s/T)\big)"
    if loss == "source":
        return (r"L = \mathrm{CE}(s, y) + \lambda\,\mathrm{KL}\big(\mathrm{softmax}(t)\,\|\,\mathrm{softmax}(s)\big)"
                rf"\quad\text{{with }}\lambda = {lam:g}")
    return (rf"L = \alpha\,T^2\,{kl} + (1-\alpha)\,\mathrm{{CE}}(s, y)"
            rf"\quad\text{{with }}T = {t:g},\ \alpha = {alpha:g}")


page = layout.navigation(home, ROOT)
try:
    page.run()
finally:  # also after a page's st.stop()
    layout.after_run()
