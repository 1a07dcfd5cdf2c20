"""Markdown tables for the README from `sectioncls evaluate`'s results.json.

One row per (test set, system): category macro-F1 and metric F1 as the mean over folds, and
pooled over every held-out unit of the first seed (macro-F1 of a single small report swings
with one unit of a rare class, the pooled figure less so), plus the per-fold table.
Run: .venv/bin/python scripts/results_tables.py outputs/eval/results.json
"""

from __future__ import annotations

import json
import sys

SHORT = {
    "fine-tuned tagger": "tagger",
    "fine-tuned tagger, units alone": "tagger, units alone",
    "section rule + number regex": "rule + regex",
    "TF-IDF char n-gram + LR": "TF-IDF + LR",
}


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        results = json.load(fh)
    tests = results.get("tests") or {"as written": results["systems"]}
    print("| held-out reports | system | macro-F1 (mean ± std) | pooled macro-F1 | accuracy "
          "| metric F1 | pooled metric F1 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for test, systems in tests.items():
        for name, s in systems.items():
            p = s["pooled"]
            print(
                f"| {test} | {SHORT.get(name, name)} "
                f"| {s['category_macro_f1']['mean']:.3f} ± {s['category_macro_f1']['std']:.3f} "
                f"| {p['category_macro_f1']:.3f} | {p['category_accuracy']:.3f} "
                f"| {s['metric_f1']['mean']:.3f} | {p['metric_f1']:.3f} |"
            )
    print("\n| fold | test | " + " | ".join(SHORT.get(n, n) for n in tests["as written"]) + " |")
    print("|---|---|" + "---|" * len(tests["as written"]))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for f in results["folds"]:
        if f["seed"] != results["seeds"][0]:
            continue
        cell = f"{f['category_macro_f1']:.3f} / {f['metric_f1']:.3f}"
        rows.setdefault((f["held_out"][:3], f.get("test", "as written")), {})[f["system"]] = cell
    for (fold, test), cells in rows.items():
        print(f"| {fold} | {test} | " + " | ".join(cells.get(n, "–") for n in tests["as written"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
