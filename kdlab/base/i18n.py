"""The texts a reader sees, in their language: English (the source texts, written in the code) or Simplified
Chinese (简体中文, from ``assets/i18n/zh/*.json``: one file per module, English source text -> translation).

``t(text, **values)`` translates ``text`` into the reader's language, then fills its ``{placeholders}`` from
``values`` with ``str.format``, so numbers and formulas are formatted by the same code in both languages.
``N_(text)`` marks a text that is translated later, where it is shown (a table's label, a preset's summary).

Which language the reader reads is the front end's to say (``read_language_from``): the app answers per
browser session, never for everyone; without a front end (the CLI, tests of the core) it is English.
tests/test_i18n.py fails when a text the app shows has no translation.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

ASSETS = Path(__file__).resolve().parents[2] / "assets"
LANGUAGES = {"en": "English", "zh": "简体中文"}
SOURCE = "en"

_reader_language: Callable[[], str] = lambda: SOURCE  # replaced by the app


def read_language_from(source: Callable[[], str]) -> None:
    """Where ``t`` learns the reader's language (the app installs its session's)."""
    global _reader_language
    _reader_language = source


def language() -> str:
    lang = _reader_language()
    return lang if lang in LANGUAGES else SOURCE


def t(text: str, **values: Any) -> str:
    """``text`` in the reader's language, its ``{placeholders}`` filled from ``values``."""
    return translate(text, language()).format(**values) if values else translate(text, language())


def translate(text: str, lang: str) -> str:
    return text if lang == SOURCE else catalog(lang).get(text, text)


def N_(text: str) -> str:
    """Marks ``text`` for the catalog; it is translated where it is shown."""
    return text


@functools.lru_cache(maxsize=4)
def catalog(lang: str) -> dict[str, str]:
    """Every translation of ``lang``: the union of its files."""
    merged: dict[str, str] = {}
    for path in sorted((ASSETS / "i18n" / lang).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def names(texts) -> list[str]:
    """Names in the reader's language: a dataset's classes (Fashion-MNIST's are words; digits stay digits)."""
    return [t(x) for x in texts]
