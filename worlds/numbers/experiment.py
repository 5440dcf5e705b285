"""The paper's class-conditional experiment on the numbers world (two- and three-digit numbers), through the nodes.

    python -m worlds.numbers.experiment [--quick] [--json PATH] [--plot PATH] [--cfg 1.0] [--particles 2 4 8]
                                        [--seeds 4] [--methods ...] [--threads 2]

The digits experiment's grid and methods (worlds/digits/experiment.py) over the numbers world's 20 prompts; the
judge's accuracy is on whole numbers (every digit right), its log p summed over the digits.
"""
from __future__ import annotations

import os
import sys

from worlds.digits.experiment import FULL, QUICK, main as experiment_main
from worlds.numbers.world import read_numbers_world


# CFG is this world's difficulty dial (plain sampling, 8 latents per number: CFG 0.5 28 %, 0.75 64 %, 1 87 %, 1.5
# 97.5 % of whole numbers right): 0.75 sits in the band where search has room to show, 1 is the easier reference
QUICK_NUMBERS = {**QUICK, "cfg": [0.75]}
FULL_NUMBERS = {**FULL, "seeds": 8, "cfg": [0.75, 1.0]}


def main(argv=None) -> int:
    return experiment_main(argv, make_world=lambda select_size: read_numbers_world(select_size),
                           prog="python -m worlds.numbers.experiment", description=__doc__.splitlines()[0],
                           quick=QUICK_NUMBERS, full=FULL_NUMBERS)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
