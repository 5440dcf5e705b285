"""Tools the tests, the demo and the benchmarks share: the in-process ComfyUI harness, tiny random-weight model
builders in real file formats, and the example-workflow generators. Nothing here prints figures (benchmarks/ does)."""
