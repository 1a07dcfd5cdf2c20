"""Tables from a cross-validation's per-fold rows (outputs/eval/folds-partial.json).

`sectioncls evaluate` writes that file after every fold, so an interrupted run still yields
mean ± std per system over the folds (and seeds) that finished, plus the pooled confusion
matrix of each system's first seed.
Run: .venv/bin/python scripts/summarize_cv.py [outputs/eval/folds-partial.json] [TEST]
(TEST: "as written" by default, or a perturbation such as "headings removed")
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

KEYS = ("category_macro_f1", "category_accuracy", "metric_f1", "category_ece")


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "outputs/eval/folds-partial.json"
    with open(path, encoding="utf-8") as fh:
        folds = json.load(fh)
    test = sys.argv[2] if len(sys.argv) > 2 else "as written"
    by_system: dict[str, list[dict]] = defaultdict(list)
    for f in folds:
        if f.get("test", "as written") == test:  # perturbed copies are their own table
            by_system[f["system"]].append(f)
    print("| system | folds × seeds | category macro-F1 | category accuracy | metric F1 | ECE |")
    print("|---|---|---|---|---|---|")
    for name, rows in by_system.items():
        cells = [
            f"{np.mean([r[k] for r in rows]):.3f} ± {np.std([r[k] for r in rows]):.3f}"
            for k in KEYS
        ]
        n = f"{len({r['held_out'] for r in rows})} × {len({r['seed'] for r in rows})}"
        print(f"| {name} | {n} | " + " | ".join(cells) + " |")
    cats = list(next(iter(folds))["per_class"])
    for name, rows in by_system.items():
        first = rows[0]["seed"]
        cm = sum(np.asarray(r["confusion_matrix"]) for r in rows if r["seed"] == first)
        print(f"\nPooled confusion matrix, {name} (seed {first}; rows gold, columns predicted)\n")
        print("| gold \\\\ pred | " + " | ".join(cats) + " | recall |")
        print("|---|" + "---|" * (len(cats) + 1))
        for i, c in enumerate(cats):
            recall = cm[i, i] / max(cm[i].sum(), 1)
            print(f"| {c} | " + " | ".join(str(v) for v in cm[i]) + f" | {recall:.2f} |")
        prec = np.diag(cm) / np.maximum(cm.sum(0), 1)
        rec = np.diag(cm) / np.maximum(cm.sum(1), 1)
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
        print(f"\npooled category macro-F1 (all units of all held-out reports): {f1.mean():.3f}")


if __name__ == "__main__":
    main()
