"""Every text the app shows comes from the catalog, in English and Simplified Chinese (kdlab.base.i18n).

The app's modules are read as Python syntax trees: a text is a string literal that reads as words, or any
string given to a Streamlit element or a Plotly label. Each must go through ``t()`` (translated where it is
used) or ``N_()`` (marked; translated where it is shown), and each such text must have a Chinese entry with
the same ``{placeholders}``. The settings tables, presets, losses, experiments and the dataset's class names
are checked from the objects themselves, and every page text of ``assets/`` needs its ``assets/zh/`` twin.
"""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from kdlab.base import i18n

ROOT = Path(__file__).resolve().parents[1]
# The modules whose texts the app shows; kdlab/ui/serve.py is the server program (a terminal's messages).
SHOWN = sorted({*ROOT.glob("kdlab/ui/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py", *ROOT.glob("kdlab/plots/*.py"),
                ROOT / "kdlab/runs/verdict.py", ROOT / "kdlab/runs/records.py"} - {ROOT / "kdlab/ui/serve.py"})
WORDS = re.compile(r"[A-Za-z]{2,}[,;:.’'()-]*\s+[A-Za-z]{2,}")  # two words: prose, not a key or a format
ELEMENTS = {  # Streamlit calls whose first argument is shown
    "title", "header", "subheader", "markdown", "caption", "write", "text", "info", "warning", "error", "success",
    "toast", "button", "form_submit_button", "download_button", "link_button", "page_link", "radio", "selectbox",
    "select_slider", "slider", "toggle", "checkbox", "number_input", "text_input", "text_area", "multiselect",
    "expander", "popover", "metric", "file_uploader", "spinner", "status", "progress", "segmented_control",
    "pills", "tabs", "Page", "latex",
}
SHOWN_KEYWORDS = {"help", "label", "placeholder", "caption", "body", "title_text", "name", "text", "title",
                  "subplot_titles", "hovertemplate", "page_title", "legendgrouptitle_text", "aria_label"}
NOT_TEXT_KEYWORDS = {"key", "format", "url_path", "icon", "page_icon", "page_title", "mode", "type", "textposition",
                     "side", "rangemode", "xanchor", "yanchor", "texttemplate", "layout", "initial_sidebar_state",
                     "style"}  # style: an HTML element's CSS (kdlab.plots.bars)
MARKERS = {"t", "N_"}
NOT_SHOWN = {"kdlab-warm-up", "Language · 语言"}  # a thread's name; the language switch, in both
NOT_TEXT_CALLS = {"debug", "info", "warning", "error", "exception"}  # logging, when called on a logger


def _calls(tree: ast.AST):
    return (n for n in ast.walk(tree) if isinstance(n, ast.Call))


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def marked(tree: ast.AST) -> list[str]:
    """The literal texts given to ``t()`` or ``N_()``."""
    return [c.args[0].value for c in _calls(tree) if _name(c.func) in MARKERS and isinstance(c.func, ast.Name)
            and c.args and isinstance(c.args[0], ast.Constant) and isinstance(c.args[0].value, str)]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _exempt(tree: ast.AST) -> set[int]:
    """Literals that are not shown: docstrings, the arguments of t()/N_() (checked apart), keys and formats,
    logging, and everything inside them."""
    skip = _docstrings(tree)
    for c in _calls(tree):
        inside: list[ast.AST] = []
        if isinstance(c.func, ast.Name) and c.func.id in MARKERS:
            inside = c.args[:1]
        elif isinstance(c.func, ast.Attribute) and c.func.attr in NOT_TEXT_CALLS and _name(c.func.value) in ("log", "logger", "logging"):
            inside = [*c.args, *(k.value for k in c.keywords)]
        inside += [k.value for k in c.keywords if k.arg in NOT_TEXT_KEYWORDS]
        for node in inside:
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):  # state["kd.x"], a dict's key
            skip |= {id(n) for n in ast.walk(node.slice)}
        if isinstance(node, ast.Compare):  # mode == "lines"
            skip |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Constant)}
    return skip


def _shown_arguments(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for c in _calls(tree):
        args = [k.value for k in c.keywords if k.arg in SHOWN_KEYWORDS]
        if isinstance(c.func, ast.Attribute) and c.func.attr in ELEMENTS and c.args:
            args.append(c.args[0])
        for a in args:
            ids |= _literal_parts(a)
    return ids


def _literal_parts(node: ast.AST) -> set[int]:
    """The literals an argument is made of (a list's items, both sides of a choice or a sum), not what it passes
    to another call."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return set().union(*map(_literal_parts, node.elts)) if node.elts else set()
    if isinstance(node, ast.IfExp):
        return _literal_parts(node.body) | _literal_parts(node.orelse)
    if isinstance(node, ast.BinOp):
        return _literal_parts(node.left) | _literal_parts(node.right)
    if isinstance(node, ast.BoolOp):
        return set().union(*map(_literal_parts, node.values))
    return {id(node)} if isinstance(node, (ast.Constant, ast.JoinedStr)) else set()


def untranslated(tree: ast.AST) -> list[str]:
    """Texts shown without ``t()``: prose literals anywhere, any lettered literal given to an element, and
    f-strings given to an element (a translation needs the placeholders' names)."""
    skip, shown = _exempt(tree), _shown_arguments(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr) and id(node) in shown:
            if any(isinstance(v, ast.Constant) and re.search(r"[A-Za-z]{2,}", v.value) for v in node.values):
                found.append(ast.unparse(node))  # words outside the placeholders
            skip |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith("<style>") or text in NOT_SHOWN:  # CSS
                continue
            if WORDS.search(text) or (id(node) in shown and re.search(r"[A-Za-z]{2,}", text)):
                found.append(text)
    return found


def _placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", SHOWN, ids=_rel)
def test_every_text_of_a_module_goes_through_the_catalog(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert untranslated(tree) == [], f"{_rel(path)}: wrap these texts in t() (or N_() where shown later)"
    missing = [text for text in marked(tree) if text not in i18n.catalog("zh")]
    assert missing == [], f"{_rel(path)}: no Chinese for these texts in assets/i18n/zh/*.json"


def test_translations_keep_their_placeholders() -> None:
    wrong = {en: zh for en, zh in i18n.catalog("zh").items() if _placeholders(en) != _placeholders(zh)}
    assert wrong == {}


def test_catalog_files_agree_where_they_share_a_text() -> None:
    import json

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((i18n.ASSETS / "i18n" / "zh").glob("*.json")):
        for en, zh in json.loads(path.read_text(encoding="utf-8")).items():
            if en in seen and seen[en][1] != zh:
                clashes.append((en, seen[en][0], path.name))
            seen.setdefault(en, (path.name, zh))
    assert clashes == []


def _table_texts() -> list[str]:
    from kdlab.experiments import EXPERIMENTS
    from kdlab.runs.lab import LAB_SETTINGS, TEACHER_SETTINGS
    from kdlab.runs.playground import PLAYGROUND_SETTINGS
    from kdlab.runs.presets import PRESETS
    from kdlab.runs.sweep import GRID_SETTINGS
    from kdlab.training.losses import LOSSES
    from kdlab.ui.layout import pages

    texts = []
    def every(registry):
        return [registry.get(name) for name in registry.names()]

    for table in (LAB_SETTINGS, TEACHER_SETTINGS, GRID_SETTINGS, PLAYGROUND_SETTINGS):
        texts += [x for s in table if s.ui for x in (s.label, s.help, s.group) if x]  # the app's rows
    texts += [x for p in every(PRESETS) for x in (p.name, p.summary) if x]
    for info in every(LOSSES):
        texts += [x for x in (info.summary, *(p.label for p in info.params.values()), *(p.help for p in info.params.values())) if x]
    texts += [x for e in every(EXPERIMENTS) for x in (e.title, e.about) if x]
    texts += [title for _, title in pages(ROOT)]
    return texts


def test_tables_presets_losses_experiments_and_pages_are_translated() -> None:
    missing = [text for text in _table_texts() if text not in i18n.catalog("zh")]
    assert missing == []


def test_fashion_class_names_are_translated() -> None:
    from kdlab.data.images import FASHION_CLASSES

    assert [i18n.translate(c, "zh") for c in FASHION_CLASSES] != list(FASHION_CLASSES)
    assert all(c in i18n.catalog("zh") for c in FASHION_CLASSES)


def test_the_chinese_keeps_the_bold_and_the_code_of_the_english() -> None:
    """Rendered as CommonMark (Streamlit's markdown), each translation has the English's bold and code spans:
    ``**请留意：**{what}`` showed its asterisks (a closing ``**`` after a full-width colon needs a space or
    punctuation after it). Italics may become quotation marks, as Chinese prefers."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")

    def spans(text: str) -> list[str]:
        return sorted(re.findall(r"<(strong|code)>", md.render(re.sub(r"\{[^{}]*\}", "X7", text))))
    differ = [(en, zh) for en, zh in i18n.catalog("zh").items() if spans(en) != spans(zh)]
    assert differ == []


@pytest.mark.parametrize("page", sorted(p.name for p in (*(ROOT / "assets").glob("*.md"), *(ROOT / "assets").glob("*.svg"))))
def test_every_page_text_has_a_chinese_twin(page: str) -> None:
    zh = ROOT / "assets" / "zh" / page
    assert zh.is_file(), f"assets/zh/{page} is missing"
    en_numbers = re.findall(r"\d+(?:\.\d+)?", (ROOT / "assets" / page).read_text(encoding="utf-8"))
    zh_numbers = re.findall(r"\d+(?:\.\d+)?", zh.read_text(encoding="utf-8"))
    assert sorted(en_numbers) == sorted(zh_numbers), "numbers must stay the same in both languages"


def test_every_catalog_entry_is_used() -> None:
    """No dead translations: each entry is a text of a module or of a table (a stale entry hides a rename)."""
    used = set(_table_texts())
    for path in SHOWN:
        used |= set(marked(ast.parse(path.read_text(encoding="utf-8"))))
    from kdlab.data.images import FASHION_CLASSES

    used |= set(FASHION_CLASSES)
    assert sorted(set(i18n.catalog("zh")) - used) == []


def test_the_scan_finds_what_it_should() -> None:
    tree = ast.parse('import streamlit as st\nst.button("Run")\nst.caption(f"{n} runs")\nX = "a whole sentence"\n'
                     'st.caption(t("Done."))\nst.session_state["kd.lang"]\nst.slider("", key="lab.T")\n'
                     'fig.update_xaxes(title_text="step", type="log")\n')
    assert sorted(untranslated(tree)) == ["Run", "a whole sentence", "f'{n} runs'", "step"]
    assert marked(tree) == ["Done."]


def test_t_formats_after_translating(monkeypatch) -> None:
    monkeypatch.setattr(i18n, "_reader_language", lambda: "zh")  # restored after: the app installed its own reader
    some = next(en for en in i18n.catalog("zh") if _placeholders(en))
    values = {name: 7 for name in _placeholders(some)}
    assert i18n.t(some, **values) == i18n.catalog("zh")[some].format(**values) != some.format(**values)
