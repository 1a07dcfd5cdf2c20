"""Outputs people read: a self-contained HTML page per tagged report, an index for many, CSV.

The page shows the report's own text with every unit coloured by category, metric numbers
highlighted, scores on hover, a per-section summary table and category filters; it has no
external assets, so it opens from disk or an e-mail attachment.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from .tagger import TaggedReport

__all__ = [
    "CSV_FIELDS",
    "category_colours",
    "csv_columns",
    "csv_rows",
    "index_html",
    "index_row",
    "report_html",
]

COLOURS = {
    "achievement": "#d8f0d8",
    "problem": "#ffd9d6",
    "plan": "#d6e6ff",
    "other": "#ececec",
}
LABELS_ZH = {
    "achievement": "成效/举措",
    "problem": "问题/不足",
    "plan": "计划/打算",
    "other": "其他",
}
# Colours for the categories of a user's own schema, in order after the four above.
_PALETTE = ("#fde2b3", "#e3d7ff", "#cdeff0", "#ffd8ec", "#eef0b8", "#d5e8c6", "#f5cfc2",
            "#c9d7f2")  # fmt: skip


def category_colours(categories: Sequence[str]) -> dict[str, str]:
    """A distinct background per category: the packaged four keep theirs, others get the
    palette in order (cycled past eight)."""
    extra = [c for c in categories if c not in COLOURS]
    return {c: COLOURS.get(c) or _PALETTE[extra.index(c) % len(_PALETTE)] for c in categories}


def _names(categories: Sequence[str], labels: dict[str, str] | None) -> dict[str, str]:
    return {c: (labels or {}).get(c) or LABELS_ZH.get(c, c) for c in categories}


_ROW_HEAD = (
    "doc_id",
    "index",
    "start",
    "end",
    "kind",
    "level",
    "section",
    "part",
    "heading_path",
    "text",
    "category",
)
_ROW_TAIL = ("metric", "metric_score", "metrics")


def csv_columns(categories: Sequence[str]) -> list[str]:
    """The columns of a unit row (CSV, Parquet): one score column per category."""
    return [*_ROW_HEAD, *(f"score_{c}" for c in categories), *_ROW_TAIL]


CSV_FIELDS = tuple(csv_columns(list(COLOURS)))

_STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:0;
 color:#222;background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.6em 1.2em;
 z-index:2}
h1{font-size:1.15em;margin:.2em 0}
main{display:flex;gap:1.5em;padding:1em 1.2em}
#text{flex:1;min-width:0;background:#fff;padding:1em 1.4em;border:1px solid #e3e3e3;line-height:1.9;
 white-space:pre-wrap}
aside{flex:0 0 25em;overflow-x:auto}
.u{border-radius:3px;padding:1px 0}
.u.heading{font-weight:bold}
.u.meta{color:#888}
.metric-num{background:#ffe066;border-bottom:2px solid #e0a800;font-weight:bold}
.hidden{background:transparent!important;opacity:.35}
table{border-collapse:collapse;font-size:.8em;background:#fff}
th,td{border:1px solid #ddd;padding:.2em .35em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;
 margin-right:.3em;border:1px solid #bbb}
label.filter{margin-right:1em;cursor:pointer;white-space:nowrap}
.small{color:#666;font-size:.85em}
"""

_SCRIPT = """
document.querySelectorAll('input.cat-filter').forEach(function(box){
  box.addEventListener('change', function(){
    document.querySelectorAll('.u.cat-'+box.value).forEach(function(el){
      el.classList.toggle('hidden', !box.checked);
    });
  });
});
"""


def _unit_span(report: TaggedReport, unit, colours: dict[str, str]) -> str:
    """The unit's text with its extracted numbers wrapped in <mark>."""
    parts, pos = [], unit.start
    for q in unit.metrics:
        if q.start < pos or q.end > unit.end:
            continue
        parts.append(html.escape(report.text[pos : q.start]))
        tip = f"{q.indicator} = {q.value:g} {q.unit}" if q.value is not None else q.text
        parts.append(
            f'<mark class="metric-num" title="{html.escape(tip)}">'
            f"{html.escape(report.text[q.start : q.end])}</mark>"
        )
        pos = q.end
    parts.append(html.escape(report.text[pos : unit.end]))
    scores = ", ".join(f"{k} {v:.2f}" for k, v in unit.scores.items())
    title = f"#{unit.index} {unit.category} ({scores}); metric {unit.metric_score:.2f}"
    return (
        f'<span class="u cat-{unit.category} {unit.kind}" data-index="{unit.index}" '
        f'data-category="{unit.category}" data-metric="{int(unit.metric)}" '
        f'style="background:{colours.get(unit.category, "#fff")}" title="{html.escape(title)}">'
        + "".join(parts)
        + "</span>"
    )


def _summary_table(report: TaggedReport, categories: Sequence[str], names: dict[str, str]) -> str:
    summary = report.summary()
    head = "".join(f"<th>{html.escape(names[c])}</th>" for c in categories)
    rows = []
    for section, counts in summary.items():
        cells = "".join(f"<td>{counts.get(c, 0)}</td>" for c in categories)
        rows.append(
            f"<tr><td>{html.escape(section)}</td>{cells}<td>{counts.get('metric', 0)}</td></tr>"
        )
    return (
        f'<table id="summary"><tr><th>part</th>{head}<th>metric</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def report_html(
    report: TaggedReport,
    categories: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """One self-contained page for one tagged report; `labels` maps category values to the
    names annotators see (the schema's name_zh)."""
    categories = list(categories or COLOURS)
    colours = category_colours(categories)
    names = _names(categories, labels)
    body, pos = [], 0
    for unit in report.units:
        body.append(html.escape(report.text[pos : unit.start]))
        body.append(_unit_span(report, unit, colours))
        pos = unit.end
    body.append(html.escape(report.text[pos:]))
    filters = "".join(
        f'<label class="filter"><input type="checkbox" class="cat-filter" value="{c}" checked>'
        f'<span class="swatch" style="background:{colours[c]}"></span>'
        f"{html.escape(names[c])} ({len(report.by_category(c))})</label>"
        for c in categories
    )
    problems = (
        "".join(f"<li>{html.escape(u.text)}</li>" for u in report.by_category("problem"))
        or "<li class='small'>none</li>"
    )
    return f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.doc_id)} · sectioncls</title><style>{_STYLE}</style></head>
<body><header><h1>{html.escape(report.doc_id)}</h1>
<div id="filters">{filters}
<span class="small">· <mark class="metric-num">123</mark> metric numbers · hover a unit for
scores · model {html.escape(report.model)}</span></div></header>
<main><div id="text">{"".join(body)}</div>
<aside><h2 style="font-size:1em">Summary by part</h2>{_summary_table(report, categories, names)}
<h2 style="font-size:1em">Problems</h2><ul class="small" id="problems">{problems}</ul></aside>
</main><script>{_SCRIPT}</script></body></html>
"""


def index_row(report: TaggedReport, page: str) -> dict[str, Any]:
    """What the index needs of one report: small, so a streaming run keeps one per report."""
    counts: dict[str, int] = {}
    for u in report.units:
        counts[u.category] = counts.get(u.category, 0) + 1
    return {
        "doc_id": report.doc_id,
        "page": page,
        "units": len(report.units),
        "counts": counts,
        "metric": len(report.metric_units()),
    }


def index_html(
    rows: Sequence[dict[str, Any]],
    categories: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """An index of many tagged reports (rows from `index_row`) with their counts and links."""
    categories = list(categories or COLOURS)
    names = _names(categories, labels)
    cells = []
    for row in rows:
        cells.append(
            f'<tr><td><a href="{html.escape(row["page"])}">{html.escape(row["doc_id"])}</a></td>'
            f"<td>{row['units']}</td>"
            + "".join(f"<td>{row['counts'].get(c, 0)}</td>" for c in categories)
            + f"<td>{row['metric']}</td></tr>"
        )
    head = "".join(f"<th>{html.escape(names[c])}</th>" for c in categories)
    return f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>sectioncls · {len(rows)} reports</title>
<style>{_STYLE} body{{padding:1em}}</style></head><body>
<h1>{len(rows)} tagged reports</h1>
<table id="reports"><tr><th>report</th><th>units</th>{head}<th>metric</th></tr>
{"".join(cells)}</table></body></html>
"""


def csv_rows(report: TaggedReport) -> list[dict[str, Any]]:
    """One CSV row per unit: scores in columns, extracted metrics as a JSON list."""
    rows = []
    for u in report.units:
        d = u.to_dict()
        for k, v in d.pop("scores").items():
            d[f"score_{k}"] = v
        d["heading_path"] = " › ".join(u.heading_path)
        d["metrics"] = json.dumps(d["metrics"], ensure_ascii=False) if d["metrics"] else ""
        rows.append({"doc_id": report.doc_id, **d})
    return rows
