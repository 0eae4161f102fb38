"""The app's texts in the reader's language: English, the source texts written in the code, or Simplified
Chinese (简体中文) from the catalog in ``assets/i18n/zh/*.json`` (one file per module, so modules are translated
independently).

``t(text, **values)`` returns ``text`` in the session's language, then fills its ``{placeholders}`` with
``values`` (``str.format``), so numbers and formulas are formatted the same in both languages. The language
is chosen per session, by the sidebar's switch or the URL flag ``?lang=zh``, never for everyone.
``asset(name)`` is a page text of ``assets/`` (``assets/zh/`` in Chinese). tests/test_i18n.py fails when a
text the app shows has no translation.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import streamlit as st

ROOT = Path(__file__).resolve().parents[2] / "assets"
LANGUAGES = {"en": "English", "zh": "简体中文"}
LANG = "kd.lang"  # the session's language


def language() -> str:
    return st.session_state.get(LANG, "en")


def set_from_url() -> None:
    """``?lang=zh`` chooses the session's language (a link to a Chinese class opens in Chinese)."""
    if (lang := st.query_params.get("lang")) in LANGUAGES:
        st.session_state[LANG] = lang


def t(text: str, **values: Any) -> str:
    """``text`` in the session's language, its ``{placeholders}`` filled from ``values``."""
    lang = language()
    out = text if lang == "en" else catalog(lang).get(text, text)
    return out.format(**values) if values else out


@functools.lru_cache(maxsize=4)
def catalog(lang: str) -> dict[str, str]:
    """Every translation of ``lang``: the union of its files (English source text -> translation)."""
    merged: dict[str, str] = {}
    for path in sorted((ROOT / "i18n" / lang).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def asset_path(name: str, lang: str) -> Path:
    return ROOT / name if lang == "en" else ROOT / lang / name


@functools.lru_cache(maxsize=64)
def _asset(name: str, lang: str) -> str:
    return asset_path(name, lang).read_text(encoding="utf-8")


def asset(name: str) -> str:
    return _asset(name, language())


def language_switch() -> None:
    """The sidebar's choice of language; the URL keeps it (``?lang=zh``), so a link opens in it."""
    st.sidebar.radio("Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key=LANG, horizontal=True)
    if language() == "en":
        if "lang" in st.query_params:
            del st.query_params["lang"]
    else:
        st.query_params["lang"] = language()
