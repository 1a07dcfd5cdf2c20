"""How strongly reading a report in order should count, from a cross-validation's predictions.

The tagger reads a report in order (`sectioncls.sequence`): the encoder's probabilities are the
emissions of a linear chain whose transitions count with `sequence_weight` (1.0 in the default
config). `sectioncls evaluate` keeps every fold's units-alone probabilities and the fold's own
transitions in predictions.jsonl.gz, so each weight here is the same trained models read again,
with no retraining. The row at the config's weight reproduces the evaluation's own figure (a
check printed beside it). Pooled over the held-out units of each seed, category macro-F1.

Run: .venv/bin/python scripts/sequence_weight.py outputs/eval/predictions.jsonl.gz
     [--system "fine-tuned tagger"] [--weights 0 0.25 0.5 0.75 1 1.5]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
from collections import defaultdict

import numpy as np

from sectioncls.evaluation import UNITS_ALONE, Scorer
from sectioncls.sequence import Transitions, smooth_groups


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("predictions")
    ap.add_argument("--system", default="fine-tuned tagger")
    ap.add_argument("--weights", type=float, nargs="+", default=[0, 0.25, 0.5, 0.75, 1, 1.5])
    args = ap.parse_args()
    with gzip.open(args.predictions, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    alone = [r for r in records if r["system"] == args.system + UNITS_ALONE]
    in_order = {
        (r["held_out"], r["test"], r["seed"]): r for r in records if r["system"] == args.system
    }
    if not alone:
        raise SystemExit(f"{args.predictions}: no '{args.system}{UNITS_ALONE}' records")
    n_cats = len(alone[0]["p_category"][0])
    score = Scorer([str(i) for i in range(n_cats)])
    # (test, seed) -> weight -> pooled gold / probabilities; weight None: the evaluation's own.
    pools: dict[tuple[str, int], dict[float | None, dict[str, list]]] = defaultdict(
        lambda: defaultdict(lambda: {"y": [], "p": [], "ym": [], "pm": []})
    )
    trained: set[float] = set()  # the weight each fold's model was trained with
    for r in alone:
        base = Transitions.from_dict(r["transitions"])
        if base is None:
            raise SystemExit(f"{args.predictions}: {r['held_out']} has no transitions")
        trained.add(base.weight)
        probs = np.asarray(r["p_category"], dtype=np.float32)
        runs = {
            w: smooth_groups(
                probs, r["doc_id"], r["unit_index"], dataclasses.replace(base, weight=w)
            )
            for w in args.weights
        }
        own = in_order.get((r["held_out"], r["test"], r["seed"]))
        if own is not None:
            runs[None] = np.asarray(own["p_category"])
        for w, p in runs.items():
            pool = pools[(r["test"], r["seed"])][w]
            pool["y"] += r["category"]
            pool["p"] += np.asarray(p).tolist()
            pool["ym"] += r["metric"]
            pool["pm"] += r["p_metric"]
    weights = [*args.weights, None]
    head = " | ".join(f"weight {w:g}" for w in args.weights)
    as_trained = ", ".join(f"{w:g}" for w in sorted(trained))
    print(f"| held-out reports | seed | {head} | evaluation (weight {as_trained}) |")
    print("|---|---|" + "---|" * len(weights))
    for (test, seed), by_weight in pools.items():
        cells = []
        for w in weights:
            pool = by_weight.get(w)
            if pool is None:
                cells.append("–")
                continue
            figs = score(pool["y"], np.asarray(pool["p"]), pool["ym"], pool["pm"])
            cells.append(f"{figs['category_macro_f1']:.3f}")
        print(f"| {test} | {seed} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
