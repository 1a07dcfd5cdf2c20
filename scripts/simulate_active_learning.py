"""How many labelled units until the model is good on a new kind of report: active learning,
simulated on the annotated data, three ways of choosing side by side in one run.

A starting model has never seen one kind of report (a kind of the written corpus, held out of
its training). That kind's reports are split into a pool (units an annotator could label) and
a test set (whole reports, never labelled). For every k, k pool units are chosen

- by uncertainty: the starting model's least confident units (1 - max probability) first;
- at random;
- in the segmenter's order: the first k units of the pool reports, as an annotator working
  through the reports would label them;

and the starting model is fine-tuned on them (`init_from`), with a replay sample of its own
training data so that it does not forget the rest, then scored on the test reports.

Run (the starting model trained without the held-out kind first; see README):
  .venv/bin/python scripts/simulate_active_learning.py --model /tmp/al/base \\
      --pool /tmp/al/pool.json --train /tmp/al/train.json --test-reports w26 w05
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from sectioncls import ReportTagger
from sectioncls.data import load_dataset
from sectioncls.metrics import classification_figures
from sectioncls.training import TrainConfig, encode_dataset, predict_dataset, train

STRATEGIES = ("uncertainty", "random", "order")


def _key(task: dict) -> tuple[str, int]:
    return str(task["data"]["doc_id"]), int(task["data"]["unit_index"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the starting checkpoint")
    ap.add_argument("--pool", required=True, help="export of the held-out kind's reports")
    ap.add_argument("--train", required=True, help="the starting model's written export")
    ap.add_argument("--real", default="annotations/reports.json")
    ap.add_argument("--test-reports", nargs="+", required=True, help="doc id prefixes")
    ap.add_argument("--k", type=int, nargs="+", default=[25, 50, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--replay", type=int, default=400, help="units of old training data mixed in")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--config", default="configs/train-default.yaml")
    ap.add_argument("--output", default="outputs/active-learning")
    args = ap.parse_args()

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    tasks = json.loads(Path(args.pool).read_text("utf-8"))
    is_test = [any(_key(t)[0].startswith(p) for p in args.test_reports) for t in tasks]
    pool = sorted((t for t, x in zip(tasks, is_test, strict=True) if not x), key=_key)
    test_tasks = [t for t, x in zip(tasks, is_test, strict=True) if x]
    old = json.loads(Path(args.train).read_text("utf-8"))
    old += json.loads(Path(args.real).read_text("utf-8"))
    tmp = Path(tempfile.mkdtemp(prefix="sectioncls-al-"))
    (tmp / "test.json").write_text(json.dumps(test_tasks, ensure_ascii=False), "utf-8")
    (tmp / "pool.json").write_text(json.dumps(pool, ensure_ascii=False), "utf-8")
    base_cfg = TrainConfig.from_yaml(args.config)
    schema = base_cfg.load_schema()
    test = load_dataset([tmp / "test.json"], schema)[0]["train"]
    pool_ds = load_dataset([tmp / "pool.json"], schema)[0]["train"]
    cats = list(schema.categories)

    tagger = ReportTagger.from_pretrained(args.model, backend="torch", dtype="float32")

    def score(p_cat, p_metric) -> dict:
        figs = classification_figures(cats, test["category"], p_cat, test["metric"], p_metric)
        return {k: round(figs[k], 4) for k in ("category_macro_f1", "category_accuracy",
                                                 "metric_f1")}  # fmt: skip

    start = score(*tagger.predict_units(list(test)))
    print(f"starting model on the test reports: {start}", flush=True)
    # One ranking from the starting model (batch-mode selection, one round).
    p_pool, _ = tagger.predict_units(list(pool_ds))
    by_key = {(r["doc_id"], r["unit_index"]): i for i, r in enumerate(pool_ds)}
    confidence = [float(p_pool[by_key[_key(t)]].max()) for t in pool]

    rows = [{"strategy": "none", "k": 0, "seed": 0, **start}]
    for seed in args.seeds:
        rng = random.Random(seed)
        replay = rng.sample(old, min(args.replay, len(old)))
        order = {
            "uncertainty": sorted(range(len(pool)), key=lambda i: confidence[i]),
            "random": rng.sample(range(len(pool)), len(pool)),
            "order": list(range(len(pool))),
        }
        for strategy in STRATEGIES:
            for k in args.k:
                chosen = [pool[i] for i in order[strategy][:k]]
                export = tmp / f"{strategy}-{k}-{seed}.json"
                export.write_text(json.dumps(chosen + replay, ensure_ascii=False), "utf-8")
                cfg = TrainConfig.from_yaml(
                    args.config,
                    init_from=args.model,
                    annotations=[str(export)],
                    output_dir=str(tmp / "model"),
                    epochs=args.epochs,
                    real_oversampling=1,
                    seed=seed,
                    dev_reports=[],
                )
                _, trainer = train(cfg, progress=False, save=False)
                enc = encode_dataset(test, trainer.processing_class, cfg.inputs)
                figs = score(*predict_dataset(trainer, enc))
                rows.append({"strategy": strategy, "k": k, "seed": seed, **figs})
                print(f"{strategy:<12} k={k:<4} seed {seed}: {figs}", flush=True)
                (out / "results.json").write_text(json.dumps(rows, indent=1), "utf-8")

    print("\n| strategy | " + " | ".join(f"k={k}" for k in args.k) + " |")
    print("|---|" + "---|" * len(args.k))
    curves = {}
    for strategy in STRATEGIES:
        means = []
        for k in args.k:
            vals = [r["category_macro_f1"] for r in rows if r["strategy"] == strategy
                    and r["k"] == k]  # fmt: skip
            means.append((float(np.mean(vals)), float(np.std(vals))))
        curves[strategy] = means
        print(f"| {strategy} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in means) + " |")
    print(f"(k = 0, the starting model: {start['category_macro_f1']:.3f})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, means in curves.items():
        ks = [0, *args.k]
        ys = [start["category_macro_f1"], *(m for m, _ in means)]
        ax.plot(ks, ys, marker="o", label=strategy)
    ax.axhline(0.90, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("labelled units of the new kind")
    ax.set_ylabel("category macro-F1 on its test reports")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "learning-curves.png", dpi=120)
    print(f"wrote {out / 'results.json'} and {out / 'learning-curves.png'}")


if __name__ == "__main__":
    main()
