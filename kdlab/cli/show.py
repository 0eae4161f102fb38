"""Human-readable output of the commands: aligned tables and percentages (``--json`` prints the data instead)."""
from __future__ import annotations

from typing import Any, Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def pct(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{100 * x:.{digits}f} %"


def size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:.0f} kB"


def spread(stats: dict[str, Any]) -> str:
    """'94.5 ± 0.7 % (95.3, 93.9, 94.4)' for mean, std and per-seed fractions."""
    per = ", ".join(f"{100 * v:.1f}" for v in stats["per_seed"])
    if len(stats["per_seed"]) == 1:
        return pct(stats["mean"])
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f} % ({per})"
