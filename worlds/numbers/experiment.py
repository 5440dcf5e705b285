"""The paper's class-conditional experiment on the numbers world (two- and three-digit numbers), through the nodes.

    python -m worlds.numbers.experiment [--quick] [--json PATH] [--plot PATH] [--cfg 1.0] [--particles 2 4 8]
                                        [--seeds 4] [--methods ...] [--threads 2]

The digits experiment's grid and methods (worlds/digits/experiment.py) over the numbers world's 20 prompts; the
judge's accuracy is on whole numbers (every digit right), its log p summed over the digits.
"""
from __future__ import annotations

import os
import sys

from worlds.digits.experiment import main as experiment_main
from worlds.numbers.world import read_numbers_world


def main(argv=None) -> int:
    return experiment_main(argv, make_world=lambda select_size: read_numbers_world(select_size),
                           prog="python -m worlds.numbers.experiment", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
