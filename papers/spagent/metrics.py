"""VBench-style quality metrics that need no downloaded weights [recon where marked].

- temporal flickering: (255 − mean_i mean|f_i − f_{i+1}|) / 255 (VBench's formula, exact);
- subject consistency: mean_{i≥1} ½[max(0, cos(φ_i, φ_{i−1})) + max(0, cos(φ_i, φ_0))] with φ
  the image features of our encoder (VBench: DINO) [recon];
- background consistency: the same formula on the features of each frame's background plate
  (the subject segmented out and filled from the row medians) [recon: VBench uses CLIP on
  whole frames];
- dynamic degree: the mean of the top 5 % optical-flow magnitudes (OpenCV Farnebäck instead of
  RAFT), averaged over frame pairs, in pixels per frame; `dynamic` maps it to [0, 1] by a scale
  [recon], `dynamic_degree` is VBench's binary "moves more than a threshold";
- motion smoothness: (255 − mean_i mean|f_i − ½(f_{i−1} + f_{i+1})|) / 255: the error of
  interpolating each inner frame from its neighbours (VBench interpolates with AMT) [recon];
- text-video alignment: the encoder's softmax probability of the target caption among the
  (colour, subject) captions, averaged over frames [recon: VBench uses CLIP/ViCLIP scores];
- edit preservation: the fraction of the input's background pixels an edit left (within 12
  levels) unchanged [recon].
"""

from __future__ import annotations

import numpy as np

from papers.spagent import scenes

VIDEO_DIMS = ("flicker", "subject", "background", "dynamic", "smoothness", "alignment")
IMAGE_DIMS = {"t2i": ("alignment",), "edit": ("alignment", "preservation")}
TOP_FRACTION = 0.05


def _f(video) -> np.ndarray:
    return np.asarray(video, dtype=np.float64)


def temporal_flickering(video) -> float:
    v = _f(video)
    if v.shape[0] < 2:
        return 1.0
    return float((255.0 - np.abs(v[1:] - v[:-1]).mean()) / 255.0)


def consistency(features) -> float:
    """VBench's subject-consistency formula on per-frame features (T, d)."""
    phi = _f(features)
    phi = phi / np.maximum(np.linalg.norm(phi, axis=1, keepdims=True), 1e-12)
    if phi.shape[0] < 2:
        return 1.0
    prev = np.maximum(0.0, np.sum(phi[1:] * phi[:-1], axis=1))
    first = np.maximum(0.0, phi[1:] @ phi[0])
    return float(np.mean(0.5 * (prev + first)))


def background_plates(video) -> np.ndarray:
    return np.stack([scenes.segment(f)[1] for f in np.asarray(video)]).round().astype(np.uint8)


def subject_consistency(video, encoder) -> float:
    return consistency(encoder.image(np.asarray(video)))


def background_consistency(video, encoder) -> float:
    return consistency(encoder.image(background_plates(video)))


def flow_magnitude(video) -> float:
    """Mean over frame pairs of the mean of the top 5 % Farnebäck flow magnitudes (pixels)."""
    import cv2

    v = np.asarray(video)
    if v.shape[0] < 2:
        return 0.0
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in v.astype(np.uint8)]
    out = []
    for a, b in zip(grey[:-1], grey[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 7, 3, 5, 1.1, 0)
        mag = np.sort(np.hypot(flow[..., 0], flow[..., 1]).ravel())
        k = max(1, int(round(TOP_FRACTION * mag.size)))
        out.append(float(mag[-k:].mean()))
    return float(np.mean(out))


def dynamic(video, scale: float) -> float:
    """Flow magnitude mapped to [0, 1]: min(1, magnitude / scale)."""
    return float(min(1.0, flow_magnitude(video) / scale))


def dynamic_degree(video, threshold: float) -> bool:
    return flow_magnitude(video) > threshold


def motion_smoothness(video) -> float:
    v = _f(video)
    if v.shape[0] < 3:
        return 1.0
    err = np.abs(v[1:-1] - 0.5 * (v[:-2] + v[2:])).mean()
    return float((255.0 - err) / 255.0)


def softmax_alignment(frame_features, caption_features, target: int, scale: float) -> float:
    """Mean over frames of softmax_k(scale · cos(φ_frame, ψ_k))[target]."""
    phi = _f(frame_features)
    psi = _f(caption_features)
    logits = scale * phi @ psi.T
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return float(p[:, target].mean())


def text_alignment(video, colour: str, subject: str, encoder) -> float:
    from papers.spagent.encoder import GRID

    frames = np.asarray(video)
    frames = frames[None] if frames.ndim == 3 else frames
    return softmax_alignment(encoder.image(frames), encoder.grid_text(), GRID.index((colour, subject)),
                             encoder.scale())


def preservation(before, after) -> float:
    mask, _ = scenes.segment(np.asarray(before))
    diff = np.abs(_f(before) - _f(after)).max(axis=2)
    keep = ~mask
    return float((diff[keep] <= 12).mean()) if keep.any() else 1.0


def score_video(video, colour: str, subject: str, encoder, flow_scale: float, read: bool = False) -> dict:
    """Every video dimension of one video, each in [0, 1], higher is better (the encoder runs
    once on the frames and once on their background plates). With `read`, also the encoder's
    zero-shot (colour, subject) of the video under the key "read"."""
    from papers.spagent.encoder import GRID

    frames = np.asarray(video)
    feats = encoder.image(frames)
    out = {"flicker": temporal_flickering(frames), "subject": consistency(feats),
           "background": consistency(encoder.image(background_plates(frames))),
           "dynamic": dynamic(frames, flow_scale), "smoothness": motion_smoothness(frames),
           "alignment": softmax_alignment(feats, encoder.grid_text(), GRID.index((colour, subject)), encoder.scale())}
    if read:
        out["read"] = GRID[int(np.argmax(feats.mean(0) @ encoder.grid_text().T))]
    return out


def score_image(kind: str, image, colour: str, subject: str, encoder, before=None) -> dict:
    out = {"alignment": text_alignment(image, colour, subject, encoder)}
    if kind == "edit":
        out["preservation"] = preservation(before, image)
    return out


def weighted(scores: dict, weights: dict) -> float:
    """Σ_d w_d s_d / Σ_d w_d over the dimensions present in `scores`."""
    keys = [k for k in scores if weights.get(k, 0) > 0]
    total = sum(weights[k] for k in keys)
    return float(sum(weights[k] * scores[k] for k in keys) / total) if total else 0.0
