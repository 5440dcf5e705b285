"""Preview PNGs for the example workflows (the saved images of a run, tiled, with the workflow embedded) and the
same-name JPEG thumbnails that modern ComfyUI's template browser shows (it asks for `<workflow>.jpg`)."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, PngImagePlugin

TILE = 128


def saved_images(outputs: dict, output_dir: Path) -> list[Path]:
    """Files written by SaveImage nodes, in node order, from ComfyUI's per-node UI outputs."""
    files = []
    for node_id in sorted(outputs, key=lambda k: int(k) if str(k).isdigit() else str(k)):
        for image in (outputs[node_id] or {}).get("images", []):
            files.append(Path(output_dir) / image.get("subfolder", "") / image["filename"])
    return files


def _frames(path: Path, most: int = 4) -> list:
    """The image, or up to ``most`` evenly spaced frames of an animated one (a saved video)."""
    image = Image.open(path)
    count = getattr(image, "n_frames", 1)
    frames = []
    for index in sorted({round(k * (count - 1) / max(most - 1, 1)) for k in range(min(most, count))}):
        image.seek(index)
        frames.append(image.copy())
    return frames


def _tile(image):
    """Generated pictures (square) are upscaled to TILE; a plot (not square) keeps its size, so it stays legible."""
    return image.resize((TILE, TILE), Image.NEAREST) if image.width == image.height else image


def save_preview(outputs: dict, output_dir: Path, target: Path, workflow: dict) -> None:
    """Tile the saved images (nearest-neighbour upscaled) into one PNG that carries the workflow JSON."""
    images = [_tile(frame.convert("RGB")) for path in saved_images(outputs, output_dir) for frame in _frames(path)]
    if not images:
        raise RuntimeError(f"the workflow for {target.name} saved no images")
    sheet = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), "white")
    left = 0
    for image in images:
        sheet.paste(image, (left, 0))
        left += image.width
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", json.dumps(workflow))  # ComfyUI loads a dropped PNG's embedded workflow
    sheet.save(target, pnginfo=info)
    save_thumbnail(target)


def save_thumbnail(png: Path) -> Path:
    """The PNG's picture as a JPEG beside it, same name (python -m devtools.workflow_previews makes all of them)."""
    jpeg = Path(png).with_suffix(".jpg")
    with Image.open(png) as image:
        image.convert("RGB").save(jpeg, "JPEG", quality=90)
    return jpeg


if __name__ == "__main__":
    for path in sorted((Path(__file__).resolve().parents[1] / "example_workflows").glob("*.png")):
        print(save_thumbnail(path))
