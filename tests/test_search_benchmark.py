"""The GMM benchmark's rows have the documented format for every method (tiny sizes; figures are not asserted)."""
import math

from benchmarks.gmm.methods import METHODS, run_rows
from benchmarks.gmm.scenarios import scenarios

KEYS = {"method", "n_particles", "nfe", "reward_mean", "reward_sem", "target_distance", "seconds"}


def test_every_method_produces_a_row():
    sc = scenarios(n_target=256)["offmanifold"]
    for method in METHODS:
        row = run_rows(method, sc, 2, 6, [0])
        assert KEYS <= set(row) and row["method"] == method and row["n_particles"] == 2
        assert all(math.isfinite(row[k]) for k in KEYS - {"method", "n_particles"})
        budget = 2 * 24 * (2 if "local" in method else 1)  # N·T, doubled by one recurrence per local step
        assert 0 < row["nfe"] <= budget
