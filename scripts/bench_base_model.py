"""Compare the full and the Chinese-pruned embedded base encoders side by side.

    .venv/bin/python scripts/bench_base_model.py [--corpus examples/reports] [--threads 2]

Builds (or reuses) both bases under $SECTIONCLS_BASE_DIR or checkpoints/base. Each model is
measured in its own fresh process (so peak memory is its own): size on disk, parameters,
load time, forward throughput on the reports' sentences and a fine-tuning step. Then checks
that both give the same tokens and hidden states. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from sectioncls import base as base_model


def dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def measure(path: Path, sentences: list[str], args: argparse.Namespace) -> dict[str, float]:
    """All per-model figures; runs in a worker process of its own."""
    torch.set_num_threads(args.threads)
    AutoTokenizer.from_pretrained(path)  # warm the imports so load time is the model's own
    load_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        load_times.append(time.perf_counter() - start)

    batches = [sentences[i : i + args.batch] for i in range(0, len(sentences), args.batch)]
    start = time.perf_counter()
    with torch.no_grad():
        for batch in tqdm(batches, desc=f"forward {path.name}", leave=False):
            enc = tok(batch, padding=True, truncation=True, return_tensors="pt")
            model(**enc)
    forward_sps = len(sentences) / (time.perf_counter() - start)
    del model

    clf = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4).train()
    optim = torch.optim.AdamW(clf.parameters(), lr=1e-5)
    enc = tok(sentences[:16], padding="max_length", truncation=True, max_length=64,
              return_tensors="pt")  # fmt: skip
    labels = torch.arange(16) % 4
    step_times = []
    for _ in tqdm(range(args.steps), desc=f"train {path.name}", leave=False):
        start = time.perf_counter()
        loss = clf(**enc, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        step_times.append(time.perf_counter() - start)

    return {
        "size on disk (MB)": dir_size_mb(path),
        "parameters (M)": clf.bert.num_parameters() / 1e6,
        "vocabulary (pieces)": len(tok),
        "load, tokenizer + model (s)": statistics.median(load_times),
        f"forward, batch {args.batch} (sentences/s)": forward_sps,
        "training step, 16 × 64, AdamW (s)": statistics.median(step_times[1:]),
        "peak RSS incl. training (MB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


def run_worker(path: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", str(path), "--corpus", str(args.corpus),
           "--threads", str(args.threads), "--batch", str(args.batch),
           "--repeats", str(args.repeats), "--steps", str(args.steps)]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_outputs(dirs: dict[str, Path], sentences: list[str], sample: int) -> tuple[int, float]:
    """Sentences with identical token strings, and the max hidden-state difference on a
    sample (every k-th sentence)."""
    toks = {n: AutoTokenizer.from_pretrained(p) for n, p in dirs.items()}
    full, zh = toks["me5-small"], toks["me5-small-zh"]
    same = sum(full.tokenize(s) == zh.tokenize(s) for s in sentences)
    picked = sentences[:: max(1, len(sentences) // sample)]
    hidden = {}
    for name, path in dirs.items():
        model = AutoModel.from_pretrained(path).eval()
        with torch.no_grad():
            hidden[name] = [
                model(
                    **toks[name](picked[i : i + 16], padding=True, return_tensors="pt")
                ).last_hidden_state
                for i in range(0, len(picked), 16)
            ]
        del model
    diffs = [
        (a - b).abs().max().item() if a.shape == b.shape else float("inf")
        for a, b in zip(hidden["me5-small"], hidden["me5-small-zh"], strict=True)
    ]
    return same, max(diffs)


def leave_one_out(full_dir: Path, corpus: list[str]) -> tuple[int, int]:
    """Sentences of each report tokenised as the full model does by a base pruned *without*
    that report: how well pruning generalises beyond its corpus."""
    full_tok = AutoTokenizer.from_pretrained(full_dir)
    same = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(range(len(corpus)), desc="leave-one-out", leave=False):
            rest = corpus[:k] + corpus[k + 1 :]
            out = base_model.build_base_model(Path(tmp) / f"loo{k}", corpus_texts=rest)
            tok = AutoTokenizer.from_pretrained(out)
            for s in base_model.corpus_sentences([corpus[k]]):
                total += 1
                same += tok.tokenize(s) == full_tok.tokenize(s)
    return same, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=base_model.DEFAULT_CORPUS)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="load-time repeats (median)")
    ap.add_argument("--steps", type=int, default=4, help="training steps (median of all but 1)")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    corpus = base_model.read_corpus([args.corpus])
    sentences = base_model.corpus_sentences(corpus)
    if args.worker is not None:
        print(json.dumps(measure(args.worker, sentences, args)))
        return 0

    torch.set_num_threads(args.threads)
    dirs = {}
    for name in ("me5-small", "me5-small-zh"):
        spec = base_model.EMBEDDED_BASES[name]
        dirs[name] = base_model.build_base_model(
            base_model.base_dir(name), prune=spec.prune, corpus_texts=corpus
        )
    rows = {name: run_worker(path, args) for name, path in dirs.items()}
    same, max_diff = compare_outputs(dirs, sentences, sample=64)
    loo_same, loo_total = leave_one_out(dirs["me5-small"], corpus)

    full, zh = rows["me5-small"], rows["me5-small-zh"]
    print(f"{len(corpus)} reports from {args.corpus}: {len(sentences)} sentences; "
          f"torch threads = {args.threads}\n")  # fmt: skip
    print("| | me5-small (full) | me5-small-zh (pruned) | full / pruned |")
    print("|---|---:|---:|---:|")
    for key in full:
        fmt = "{:,.0f}" if key.startswith(("vocabulary", "peak", "size")) else "{:,.2f}"
        print(
            f"| {key} | {fmt.format(full[key])} | {fmt.format(zh[key])} "
            f"| {full[key] / zh[key]:.2f}× |"
        )
    print(f"\nidentical token strings on all report sentences: {same}/{len(sentences)}")
    print(f"max |hidden-state difference| on {64}-sentence sample: {max_diff:.1e}")
    print(f"identical tokens on a report left out of the pruning corpus: {loo_same}/{loo_total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
