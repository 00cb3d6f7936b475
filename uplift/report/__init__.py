"""Self-contained HTML reports: inline SVG charts, no scripts, no network."""

from __future__ import annotations

import html
import io as _io

import pandas as pd

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2430;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d5dbe3}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d5dbe3;padding:.25rem .6rem;text-align:right}
th{background:#f1f4f8}td:first-child,th:first-child{text-align:left}
.kpi{display:inline-block;margin:0 1.5rem 1rem 0}.kpi b{display:block;font-size:1.4rem}
.note{color:#5b6675;font-size:.85rem}
.warn{color:#8a1c1c;border-left:4px solid #c0392b;padding:.3rem .6rem;background:#fdf0ef}
"""


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body`` (already HTML)."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def table(frame: pd.DataFrame, *, digits: int = 4) -> str:
    """A DataFrame as an HTML table (numbers rounded to ``digits``)."""
    return frame.to_html(index=False, float_format=lambda v: f"{v:,.{digits}g}" if abs(v) < 1
                         else f"{v:,.{max(digits - 2, 1)}f}", border=0, escape=True,
                         na_rep="-")


def kpis(items: dict[str, str]) -> str:
    return "".join(f"<div class=\"kpi\">{html.escape(k)}<b>{html.escape(v)}</b></div>"
                   for k, v in items.items())


def svg(fig) -> str:
    """Inline SVG of a matplotlib figure, byte-stable across runs."""
    import matplotlib.pyplot as plt

    buffer = _io.StringIO()
    with plt.rc_context({"svg.hashsalt": "uplift", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def figure(width: float = 6.0, height: float = 3.6, panels: int = 1):
    """A new matplotlib figure and its axes, non-interactive: one ``Axes`` when ``panels`` is
    1 (the default), else a flat array of ``panels`` axes (also for ``panels=1`` via
    :func:`panel_axes`)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(1, panels, figsize=(width, height), squeeze=panels == 1)


def panel_axes(width: float, height: float, panels: int):
    """A figure with ``panels`` side-by-side axes, always as a flat list (also for one panel:
    matplotlib returns a bare ``Axes`` then, which is not indexable)."""
    import numpy as np

    fig, axes = figure(width, height, panels=panels)
    return fig, list(np.ravel(axes))
