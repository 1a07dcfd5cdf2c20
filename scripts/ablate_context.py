"""Which context helps? Trains the default configuration with each context variant on the same
held-out folds and prints their scores side by side, the section rule as the baseline row.

.venv/bin/python scripts/ablate_context.py --held-out 002 004
(one fold takes about 9 minutes on 2 CPU cores; without --held-out all four folds run)
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from sectioncls.data import load_dataset
from sectioncls.evaluation import cross_validate
from sectioncls.training import TrainConfig

VARIANTS = {
    "unit only": [],
    "heading path": ["heading_path"],
    "section + quantities": ["section", "quantities"],
    "kind + section": ["kind", "section"],
    "kind + section + quantities (previous default)": ["kind", "section", "quantities"],
    "kind + title + headings + quantities": ["kind", "title", "headings", "quantities"],
    "kind + title + section + headings + position + quantities (default)": [
        "kind",
        "title",
        "section",
        "headings",
        "position",
        "quantities",
    ],
    "kind + section + heading path + quantities": [
        "kind",
        "section",
        "heading_path",
        "quantities",
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/train-default.yaml")
    ap.add_argument("--held-out", nargs="+", help="doc id prefixes of the folds to run")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all")
    args = ap.parse_args()

    base = TrainConfig.from_yaml(args.config)
    schema = base.load_schema()
    dataset, _ = load_dataset(base.annotation_files(), schema)
    rows = []
    for i, name in enumerate(args.variants or VARIANTS):
        cfg = dataclasses.replace(base, context=VARIANTS[name])
        res = cross_validate(
            dataset["train"],
            list(schema.categories),
            cfg=cfg,
            seeds=(args.seed,),
            baselines=i == 0,  # the rule's figures do not depend on the context
            held_out=args.held_out,
        )
        for fold in res["folds"]:
            system = name if fold["system"] == "fine-tuned tagger" else fold["system"]
            rows.append((system, fold))
        print(f"done: {name}", flush=True)

    systems = list(dict.fromkeys(s for s, _ in rows))
    held = sorted({f["held_out"][:3] for _, f in rows})
    print(f"\nheld-out reports: {', '.join(held)}; seed {args.seed}; mean over folds\n")
    print("| system | category macro-F1 | accuracy | metric F1 |\n|---|---|---|---|")
    for s in systems:
        folds = [f for name, f in rows if name == s]
        m = {
            k: np.mean([f[k] for f in folds])
            for k in ("category_macro_f1", "category_accuracy", "metric_f1")
        }
        print(
            f"| {s} | {m['category_macro_f1']:.3f} | {m['category_accuracy']:.3f} "
            f"| {m['metric_f1']:.3f} |"
        )


if __name__ == "__main__":
    main()
