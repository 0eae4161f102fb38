"""The rules of docs/ARCHITECTURE.md that a machine can check: imports point down the layers, the core (kdlab/
outside kdlab/ui/) never imports streamlit, the library does not print, and the document matches the tree."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kdlab"
PRINTING_ALLOWED = {"cli/main.py", "cli/bench.py", "serve/loadtest.py", "__main__.py"}  # front ends: their output is the point


def core_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "ui" not in p.relative_to(PACKAGE).parts[:-1])


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, wherever it sits (top level, function, try block)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if name in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def test_the_scan_sees_the_core_and_catches_an_import():
    names = {p.name for p in core_files()}
    assert {"engine.py", "teacher_cache.py", "main.py", "distill.py"} <= names
    assert not any("ui" in p.relative_to(PACKAGE).parts[:-1] for p in core_files())
    sample = "def f():\n    import streamlit as st\nfrom streamlit.testing import v1\nimportlib.import_module('streamlit')"
    assert sorted(m for _, m in imported_modules(ast.parse(sample))) == ["streamlit", "streamlit", "streamlit.testing"]


def test_core_never_imports_streamlit():
    offenders = []
    for path in core_files():
        for lineno, module in imported_modules(ast.parse(path.read_text(), str(path))):
            if module.split(".")[0] == "streamlit":
                offenders.append(f"{path.relative_to(REPO)}:{lineno} imports {module}")
    assert offenders == [], "the core must not import streamlit (docs/ARCHITECTURE.md):\n" + "\n".join(offenders)


def test_library_modules_do_not_print():
    offenders = []
    for path in core_files():
        if path.relative_to(PACKAGE).as_posix() in PRINTING_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], "use logging in the library (docs/ARCHITECTURE.md):\n" + "\n".join(offenders)


@pytest.mark.timeout(120)
def test_importing_the_core_in_a_fresh_process_does_not_import_streamlit(tmp_path):
    code = (
        "import json, sys\n"
        "import kdlab.runs.distill, kdlab.cli.main, kdlab.serve.jobs, kdlab.stores.teacher_cache, kdlab.runs.teacher, kdlab.training.metrics\n"
        "kdlab.cli.main.build_parser()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'kdlab'))))\n"
    )
    env = dict(os.environ, KDLAB_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=110)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "kdlab.runs.distill" in modules and "kdlab.training.engine" in modules  # the probe really imported the core
    assert [m for m in modules if m.startswith("streamlit")] == []
    assert not any(m.startswith("kdlab.ui") for m in modules)


LAYERS = {"base": 0, "data": 1, "training": 1, "plots": 1, "stores": 2, "runs": 3, "experiments": 4, "serve": 5,
          "cli": 6, "ui": 7}  # docs/ARCHITECTURE.md, section 2


def test_every_folder_of_the_package_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS)
    assert not [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]


def test_imports_point_down_the_layers():
    """A module may import its own folder and lower layers only; folders of one layer do not import each other."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1:
            continue
        here = parts[0]
        for lineno, module in imported_modules(ast.parse(path.read_text(), str(path))):
            bits = module.split(".")
            if bits[0] == "kdlab" and len(bits) > 1 and bits[1] in LAYERS and bits[1] != here \
                    and LAYERS[bits[1]] >= LAYERS[here]:
                offenders.append(f"{path.relative_to(REPO)}:{lineno} imports {module}")
    assert offenders == [], "imports must point down (docs/ARCHITECTURE.md):\n" + "\n".join(offenders)


def test_the_architecture_document_names_every_module():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    missing = [str(p.relative_to(PACKAGE).with_suffix("")) for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" and p.parent != PACKAGE and f"`{p.stem}`" not in text]
    assert missing == [], f"docs/ARCHITECTURE.md does not mention: {missing}"
    for folder in LAYERS:
        assert f"`kdlab/{folder}/`" in text


def test_the_home_page_does_not_import_torch(tmp_path):
    code = "import sys, kdlab.ui.home, kdlab.ui.layout; print('torch' in sys.modules)"
    env = dict(os.environ, KDLAB_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"  # so a fresh server's first page does not wait seconds for torch
