"""Frames in and out: uint8 arrays, saved as GIF (or MP4 when imageio's ffmpeg plugin is
installed) through imageio, read back with one-line errors, and a contact sheet PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
VIDEO_SUFFIXES = (".gif", ".mp4", ".webm", ".avi", ".mov")


def as_rgb(array: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 from grey, RGBA or float arrays."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if a.ndim == 2 or (a.ndim >= 3 and a.shape[-1] not in (1, 3, 4)):
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a[..., :3]


def resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of (..., H, W, 3) frames to size × size."""
    h, w = frames.shape[-3:-1]
    if (h, w) == (size, size):
        return frames
    ys, xs = np.arange(size) * h // size, np.arange(size) * w // size
    return frames[..., ys[:, None], xs[None, :], :]


def read_image(path: str | Path, size: int) -> np.ndarray:
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--image {path}: no such file")
    try:
        img = iio.imread(path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the user's file
        raise UserError(f"--image {path}: not a readable image ({type(exc).__name__})") from None
    img = as_rgb(img)
    if img.ndim == 4:  # an animated image: its first frame
        img = img[0]
    if img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise UserError(f"--image {path}: not a readable image (shape {img.shape})")
    return resize(img, size)


def read_video(path: str | Path, size: int) -> np.ndarray:
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--video {path}: no such file")
    try:
        frames = iio.imread(path, index=None)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"--video {path}: not a readable video ({type(exc).__name__})") from None
    frames = as_rgb(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise UserError(f"--video {path}: the video has no frames")
    if frames.shape[0] < 2:
        raise UserError(f"--video {path}: the video has {frames.shape[0]} frame; at least 2 are needed")
    return resize(frames, size)


def save_image(path: str | Path, image: np.ndarray) -> Path:
    import imageio.v3 as iio

    path = Path(path)
    iio.imwrite(path, as_rgb(image))
    return path


def save_video(path: str | Path, frames: np.ndarray, fps: int = 8) -> Path:
    """GIF by default; MP4 when the suffix asks for it (needs imageio-ffmpeg)."""
    import imageio.v3 as iio

    path = Path(path)
    frames = as_rgb(frames)
    if path.suffix == ".gif":
        iio.imwrite(path, frames, duration=int(1000 / fps), loop=0)
    else:
        iio.imwrite(path, frames, fps=fps)
    return path


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: str | Path, scale: int = 3) -> Path:
    """One row per stage (an image or a video's frames), labelled, upscaled, as a PNG."""
    from PIL import Image, ImageDraw

    stacks = [np.asarray(f)[None] if np.asarray(f).ndim == 3 else np.asarray(f) for _, f in rows]
    h, w = stacks[0].shape[1] * scale, stacks[0].shape[2] * scale
    cols, label_h, gap = max(s.shape[0] for s in stacks), 14, 2
    sheet = Image.new("RGB", (cols * (w + gap) + gap, len(rows) * (h + label_h + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for r, ((label, _), frames) in enumerate(zip(rows, stacks)):
        top = gap + r * (h + label_h + gap)
        draw.text((gap, top), label, fill="black")
        for c, frame in enumerate(frames):
            tile = Image.fromarray(as_rgb(frame)).resize((w, h), Image.NEAREST)
            sheet.paste(tile, (gap + c * (w + gap), top + label_h))
    path = Path(path)
    sheet.save(path)
    return path
