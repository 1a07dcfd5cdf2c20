"""Train a tagger: the same as `sectioncls train`, runnable under `accelerate launch`.

.venv/bin/python scripts/train.py --config configs/train-default.yaml [--epochs 6 ...]
accelerate launch --num_processes 4 scripts/train.py --config configs/train-default.yaml
"""

import sys

from sectioncls.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
