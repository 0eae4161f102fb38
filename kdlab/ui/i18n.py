"""The app's language, per browser session: the sidebar's switch or the URL flag ``?lang=zh`` chooses it, never
for everyone. Importing this module tells kdlab.base.i18n to read it, so ``t()`` (re-exported here) answers in
the session's language everywhere, also in the figures the plots layer draws. ``asset(name)`` is a page text of
``assets/`` (``assets/zh/`` in Chinese).
"""
from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from kdlab.base.i18n import ASSETS, LANGUAGES, SOURCE, N_, language, names, read_language_from, t

__all__ = ["LANG", "N_", "SOURCE", "asset", "asset_path", "language", "language_switch", "names", "set_from_url", "t"]
LANG = "kd.lang"  # the session's language


def _session_language() -> str:
    if get_script_run_ctx(suppress_warning=True) is None:  # a pool's thread, a test of the core
        return SOURCE
    return st.session_state.get(LANG, SOURCE)


read_language_from(_session_language)


def set_from_url() -> None:
    """``?lang=zh`` chooses the session's language (a link to a Chinese class opens in Chinese)."""
    if (lang := st.query_params.get("lang")) in LANGUAGES:
        st.session_state[LANG] = lang


def language_switch() -> None:
    """The sidebar's choice of language; the URL keeps it (``?lang=zh``), so a link opens in it."""
    if st.session_state.get(LANG) not in LANGUAGES:  # unset, or a forged value
        st.session_state[LANG] = SOURCE
    st.sidebar.radio("Language · 语言", list(LANGUAGES), format_func=LANGUAGES.get, key=LANG, horizontal=True)
    if language() == SOURCE:
        if "lang" in st.query_params:
            del st.query_params["lang"]
    else:
        st.query_params["lang"] = language()


@functools.lru_cache(maxsize=64)
def _asset(name: str, lang: str) -> str:
    return (ASSETS / name if lang == SOURCE else ASSETS / lang / name).read_text(encoding="utf-8")


def asset(name: str) -> str:
    """The page text ``assets/<name>`` in the session's language."""
    return _asset(name, language())


def asset_path(name: str) -> Path:
    """The file ``assets/<name>`` in the session's language (an image with words in it)."""
    return ASSETS / name if language() == SOURCE else ASSETS / language() / name
