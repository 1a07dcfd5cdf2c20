"""Leave-one-report-out cross-validation of the tagger and both baselines (README results).

.venv/bin/python scripts/cross_validate.py --config configs/train-default.yaml --seeds 42 43
"""

import sys

from sectioncls.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
