"""The copy-detection similarity (SSCD's role) and the attack's metrics FAE and CIR.

SSCD cannot be downloaded here. The small runs use a fixed, documented descriptor instead
(`pixel-cosine` [recon], no training): an image in [0, 1] is box-blurred 2×2 (so a copy
that is off by a pixel or slightly noisy still matches), each colour channel is centred on
its own mean (a plain background adds nothing), and two images are compared by the cosine
c of these vectors, stretched to 2c − 1 (so that SSCD's threshold 0.5 sits at c = 0.75). A
copy scores near 1, an unrelated composition near −1; README: the two histograms. `sscd` loads a local SSCD TorchScript file (the
paper option): 288-px resize, ImageNet normalisation, cosine of its 512-d descriptors.

FAE (first-attack epoch): the first evaluation epoch at which any of the trigger
generations exceeds the threshold (None if none ever does). CIR (copyright infringement
rate): the fraction of trigger generations above the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from shared import UserError

THRESHOLD = 0.5  # SSCD's infringement threshold (SilentBadDiffusion)


def pixel_descriptor(images: torch.Tensor) -> torch.Tensor:
    """(N, D) unit vectors of (N, 3, H, W) images in [0, 1] (module docstring)."""
    blurred = F.avg_pool2d(images.float(), 2, stride=1)
    centred = blurred - blurred.mean(dim=(2, 3), keepdim=True)
    return F.normalize(centred.flatten(1), dim=1, eps=1e-8)


class Similarity:
    """sim(a, b): the (stretched) cosine of copy-detection descriptors."""

    def __init__(self, descriptor, stretch: float = 1.0) -> None:
        self.descriptor = descriptor
        self.stretch = stretch  # sim = stretch · cosine − (stretch − 1) (1: the plain cosine)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N,) similarity of images[i] to targets[i] (targets broadcast when one image)."""
        a = self.descriptor(images)
        b = self.descriptor(targets)
        return self.stretch * (a * b).sum(dim=1) - (self.stretch - 1)

    @torch.no_grad()
    def matrix(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, M) similarity of every image to every target."""
        return self.stretch * (self.descriptor(images) @ self.descriptor(targets).T) - (self.stretch - 1)


def sscd_descriptor(path: str, device: torch.device):
    """SSCD TorchScript (e.g. sscd_disc_mixup.torchscript.pt) from a local file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"similarity.sscd_path {file} is not a file (the sscd similarity needs a "
                        "local SSCD TorchScript file; nothing is downloaded)")
    try:
        model = torch.jit.load(str(file), map_location=device).eval()
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"similarity.sscd_path {file} is not a TorchScript model ({str(exc)[:80]})") from None
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def describe(images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.to(device).float(), size=(288, 288), mode="bilinear", align_corners=False)
        return F.normalize(model((x - mean) / std), dim=1).cpu()

    return describe


def build_similarity(name: str, sscd_path: str = "", device: torch.device | None = None) -> Similarity:
    if name == "pixel-cosine":
        return Similarity(pixel_descriptor, stretch=2.0)
    return Similarity(sscd_descriptor(sscd_path, device or torch.device("cpu")))


def near_copies(refs: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Near-copies of (N, 3, H, W) images: Gaussian noise σ 0.05 and 0.1, a 3×3 blur and
    1-pixel shifts (right, down, left), clamped to [0, 1]; (6 N, 3, H, W), kinds in turn."""
    g = torch.Generator().manual_seed(seed)
    copies = [refs + 0.05 * torch.randn(refs.shape, generator=g), refs + 0.1 * torch.randn(refs.shape, generator=g),
              F.avg_pool2d(refs, 3, 1, 1, count_include_pad=False),
              refs.roll(1, -1), refs.roll(1, -2), refs.roll(-1, -1)]
    return torch.cat([c.clamp(0, 1) for c in copies])


def calibration(similarity: Similarity, clean: torch.Tensor, refs: torch.Tensor,
                threshold: float) -> dict:
    """The threshold check made before any attack runs: clean images against every target
    (must fall far below) and near-copies against their target (must lie far above).
    `separated` is true when the 99th percentile of the clean similarities and the 1st
    percentile of the near-copies' bracket the threshold."""
    clean_sims = similarity.matrix(clean, refs).flatten().double()
    copies = near_copies(refs)
    copy_sims = similarity(copies, refs.repeat(len(copies) // len(refs), 1, 1, 1)).double()
    out = {"clean_q99": float(torch.quantile(clean_sims, 0.99)), "clean_max": float(clean_sims.max()),
           "copy_q01": float(torch.quantile(copy_sims, 0.01)), "copy_min": float(copy_sims.min()),
           "threshold": float(threshold)}
    out["separated"] = out["clean_q99"] < threshold < out["copy_q01"]
    return out


def first_attack_epoch(epochs: Sequence[float], sims: Sequence[Sequence[float]],
                       threshold: float = THRESHOLD) -> float | None:
    """FAE: the first of `epochs` whose generations' similarities (a row of `sims`) include
    one above `threshold`; None when none does."""
    for epoch, row in zip(epochs, sims, strict=True):
        if max(row) > threshold:
            return float(epoch)
    return None


def infringement_rate(sims: Sequence[float], threshold: float = THRESHOLD) -> float:
    """CIR: the fraction of similarities above `threshold`."""
    values = torch.as_tensor(list(sims), dtype=torch.float64)
    return float((values > threshold).double().mean()) if values.numel() else 0.0
