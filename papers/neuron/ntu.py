"""Real skeleton arrays a user supplies (nothing is ever downloaded).

Expected files in `data.path`, in the layout CTR-GCN's `data/ntu*/seq_transformation.py`
writes (`np.savez(name, x_train=..., y_train=..., x_test=..., y_test=...)`):

  source   benchmark  file
  ntu60    xsub       NTU60_CS.npz      (NTU RGB+D 60, cross-subject)
  ntu60    xview      NTU60_CV.npz      (cross-view)
  ntu120   xsub       NTU120_CSub.npz   (NTU RGB+D 120, cross-subject)
  ntu120   xset       NTU120_CSet.npz   (cross-setup)
  pkummd   xsub       PKUMMD_CS.npz     (PKU-MMD phase 1, cross-subject; our naming)
  pkummd   xview      PKUMMD_CV.npz     (PKU-MMD phase 1, cross-view; our naming)

x_* (N, T, 150) float: per frame the first person's 25 joints × xyz, then the second's
(zeros when absent), frames after the end zero-padded (T = 300 in CTR-GCN's files). y_* is
one-hot (N, C) as CTR-GCN stores it, or integer labels (N,); C is 60 / 120 / 51. For PKU-MMD
skeletons cut into action clips and stored the same way, name the file as above.

`load_real` returns (train, test) dicts with the keys `synth.generate` returns: x (float32),
y (int64 labels), length (the number of frames that are not all zeros). Uncompressed npz
members (what `np.savez` writes) are memory-mapped read-only, so NTU-120's ~11 GB of
training frames are not read into memory at once (x is then a read-only np.memmap, and its
bytes are not CRC-checked); compressed members are read whole. Anything missing or
malformed is a one-line `UserError` naming the file.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from shared import UserError

from .config import DataConfig

FILES: dict[tuple[str, str], str] = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
    ("pkummd", "xsub"): "PKUMMD_CS.npz",
    ("pkummd", "xview"): "PKUMMD_CV.npz",
}
NUM_CLASSES = {"ntu60": 60, "ntu120": 120, "pkummd": 51}
CHANNELS = 150  # 2 persons × 25 joints × xyz


def real_file(cfg: DataConfig) -> Path:
    """The file `load_real` reads for cfg.source / cfg.benchmark / cfg.path."""
    if cfg.source not in NUM_CLASSES:
        raise UserError(f"config key 'data.source': '{cfg.source}' is not a real dataset "
                        f"(one of {', '.join(NUM_CLASSES)})")
    name = FILES.get((cfg.source, cfg.benchmark))
    if name is None:
        valid = [b for s, b in FILES if s == cfg.source]
        raise UserError(f"config key 'data.benchmark': '{cfg.benchmark}' does not exist for "
                        f"{cfg.source} (valid: {', '.join(valid)})")
    if not cfg.path:
        raise UserError(f"config key 'data.path' is empty: set it to the directory holding {name}")
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise UserError(f"data.path {folder} is not a directory (it should hold {name})")
    path = folder / name
    if not path.is_file():
        present = sorted(p.name for p in folder.glob("*.npz"))
        raise UserError(f"{path} not found (npz files there: {', '.join(present) or 'none'})")
    return path


def _stored_header(path: Path, info: zipfile.ZipInfo):
    """(shape, fortran order, dtype, byte offset) of an uncompressed .npy member, or None
    for a .npy format version we do not parse by hand."""
    with path.open("rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"bad zip entry for {info.filename}")
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        return shape, fortran, dtype, fh.tell()


def _member(zf: zipfile.ZipFile, path: Path, key: str) -> np.ndarray:
    """One array of the npz: memory-mapped when stored uncompressed, else read."""
    info = zf.getinfo(key + ".npy")
    header = _stored_header(path, info) if info.compress_type == zipfile.ZIP_STORED else None
    if header is not None:
        shape, fortran, dtype, offset = header
        if dtype.hasobject:
            raise ValueError(f"{key} holds Python objects")
        size = int(np.prod(shape)) * dtype.itemsize
        if offset + size > path.stat().st_size:
            raise ValueError(f"{key} is truncated")
        if size == 0:
            return np.zeros(shape, dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran else "C")
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _valid_frames(x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        block = np.asarray(x[start:start + chunk])
        out[start:start + chunk] = (block != 0).any(axis=2).sum(axis=1)
    return out


def _labels(y: np.ndarray, n: int, classes: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape != (n, classes):
            raise UserError(f"{where}: one-hot labels of shape {y.shape}, expected ({n}, {classes})")
        if n and not (y.max(axis=1) > 0).all():
            raise UserError(f"{where}: some one-hot rows have no positive entry")
        labels = y.argmax(axis=1)
    elif y.ndim == 1:
        if y.shape[0] != n or not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"{where}: labels of shape {y.shape} and dtype {y.dtype}, "
                            f"expected ({n},) integers or ({n}, {classes}) one-hot")
        labels = y
    else:
        raise UserError(f"{where}: labels of shape {y.shape}, expected ({n}, {classes}) one-hot")
    labels = labels.astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise UserError(f"{where}: labels outside 0..{classes - 1}")
    return labels


def load_real(cfg: DataConfig) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(train, test) from the user's CTR-GCN-format file for cfg.source / cfg.benchmark."""
    path = real_file(cfg)
    classes = NUM_CLASSES[cfg.source]
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            missing = [k for k in keys if k not in names]
            if missing:
                raise UserError(f"{path} lacks {', '.join(missing)} "
                                f"(has: {', '.join(sorted(names)) or 'nothing'})")
            arrays = {k: _member(zf, path, k) for k in keys}
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, OSError, EOFError,
            KeyError) as err:
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise UserError(f"{path} is not a readable npz (truncated or corrupt?): {detail}") from None

    out = []
    for split in ("train", "test"):
        x, where = arrays[f"x_{split}"], f"{path} x_{split}"
        if x.ndim != 3 or x.shape[2] != CHANNELS or x.shape[1] < 1:
            raise UserError(f"{where}: shape {x.shape}, expected (N, T, {CHANNELS}) (CTR-GCN layout)")
        if not np.issubdtype(x.dtype, np.floating):
            raise UserError(f"{where}: dtype {x.dtype}, expected floating point")
        y = _labels(arrays[f"y_{split}"], x.shape[0], classes, f"{path} y_{split}")
        if x.dtype != np.float32:
            x = np.asarray(x, dtype=np.float32)
        try:
            length = _valid_frames(x)
        except (ValueError, OSError) as err:
            raise UserError(f"{where}: unreadable ({err})") from None
        out.append({"x": x, "y": y, "length": length})
    return out[0], out[1]
