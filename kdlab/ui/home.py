"""The home page: what distillation is, the current loss's formula, the presets, the pages of the lab, and where
students join the class (first in presenter mode, the projector's view of the start of a lesson)."""
from __future__ import annotations

import streamlit as st

from kdlab.runs.presets import get_preset, preset_names
from kdlab.ui import i18n, join, layout, state  # light: the home page must not wait for torch to import
from kdlab.ui.i18n import N_, t

PAGES = {"Playground": N_("Three students on 2-D data, live: from few labels, the teacher's answers, its soft "
                          "targets."),
         "Distill": N_("Train a student live, beside a scratch twin; results and confusion matrices."),
         "Temperature": N_("Watch soft targets flatten as T rises, on the teacher's cached outputs."),
         "Sweep": N_("A grid over T × α (× seeds): where does distillation help most?"),
         "Runs": N_("Every finished run, overlaid; download configs, results and weights."),
         "Experiments": N_("Hinton 2015's experiments, several seeds each."),
         "Lesson": N_("Distillation's story in six steps, for a lecture: what to look for, and the lab's own "
                      "results.")}  # keyed by the page's English title (its file name)


def home() -> None:
    """The home page (``st.Page(home)`` in kdlab.ui.layout.navigation)."""
    layout.header(t("kdlab: a knowledge-distillation lab"),
                  t("Train a small student network to imitate a large teacher, and watch it happen."), join=False)
    if layout.presenter():
        join.join_panel(big=True)
    cfg = state.lab().config
    st.markdown(t(
        "A trained **teacher** knows more than its top answer: its probabilities say which wrong classes look "
        "alike (a 7 resembles a 1 more than an 8). Softened by a **temperature** T, its logits `t` become "
        "*soft targets* `softmax(t/T)`, and a smaller **student** with logits `s` learns from them "
        "(Hinton, Vinyals & Dean, 2015):"))
    st.image(str(i18n.asset_path("kd_diagram.svg")), width=760)
    layout.when_imported("kdlab.training.losses", lambda: st.latex(loss_latex(cfg)))
    st.caption(t("The {loss} loss with the current settings: σ is the softmax, s the student's and t the teacher's "
                 "logits, y the label. In Hinton's loss α weights the soft term and T² keeps its gradients on the "
                 "same scale whatever T is.", loss=cfg.loss))

    st.subheader(t("Start from a preset"))
    names = preset_names()
    for col, name in zip(st.columns(len(names)), names):
        preset = get_preset(name)
        col.button(t(name), key=f"preset.{name}", on_click=state.apply_preset, args=(name,), width="stretch",
                   type="primary" if state.preset_name() == name else "secondary")
        col.caption(t(preset.summary))

    st.subheader(t("The lab"))
    for path, title in layout.pages():
        label = t("**{title}**: {what}", title=t(title), what=t(PAGES[title])) if title in PAGES else f"**{t(title)}**"
        st.page_link(str(path), label=label, icon=layout.ICONS.get(title))
    layout.explain(t("How the lab works"), "home")
    if not layout.presenter():
        join.join_panel()


def loss_latex(cfg) -> str:
    """The current loss's own formula (from the loss registry) with the values of the settings it uses."""
    from kdlab.training.losses import loss_info

    info = loss_info(cfg.loss)
    values = ([f"T = {cfg.temperature:g}"] if info.uses_temperature else []) + \
        ([rf"\alpha = {cfg.alpha:g}"] if info.uses_alpha else []) + \
        [f"{p.symbol} = {cfg.loss_params.get(name, p.default):g}" for name, p in info.params.items()]
    where = r"\quad\text{" + t("with") + " }" + r",\ ".join(values) if values else ""
    return f"L = {info.formula}{where}"
