"""The exact Gaussian-mixture benchmark of the search algorithms: `python -m benchmarks.gmm` (see __main__.py)."""
