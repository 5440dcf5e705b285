"""The digits world: `python -m worlds.digits build` makes its weights (see worlds/digits/README.md);
`python -m worlds.digits run` runs the class-conditional search experiment through the real nodes
(docs/digits.md); `python -m worlds.digits comfy-check` samples the committed world through ComfyUI and
scores it; `python -m worlds.digits speed` measures what makes the experiment fast on a CPU."""
import sys

COMMANDS = {"build": "worlds.digits.build", "run": "worlds.digits.experiment",
            "comfy-check": "worlds.digits.comfy_check", "speed": "worlds.digits.speed"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m worlds.digits {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
