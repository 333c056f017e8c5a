"""Skeleton encoders (Shift-GCN with a CPU shift, or ST-GCN) and the CTR-GCN-style input
pipeline: (N, 300, 150) NTU arrays -> (N, 3, T, 25, 2) tensors -> crop-and-resize to 64
frames -> random rotation.

Both encoders map (N, 3, T, 25, M) to a feature map (N, width, T/4, 25) (persons averaged
after the backbone) and, through global average pooling and a linear layer, to seen-class
logits. Everything here is plain torch: the temporal shift that Shift-GCN ships as a CUDA
extension is a per-channel gather with linear interpolation (learnable real-valued shift per
channel, as the released op; its second, joint-axis offset, initialised at ±1e-8, is left
out). Depth is `encoder.blocks` per stage: 6 blocks ([2, 2, 2]) keep CPU runs short; Shift-GCN
has 10 ([4, 3, 3], paper.yaml).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from papers.neuron.config import EncoderConfig

NUM_JOINTS = 25
NUM_PERSONS = 2
# The 24 NTU bones (child, parent), 0-based: the list ST-GCN/CTR-GCN build their NTU graph
# from (root: joint 20, spine shoulder). It keeps the common quirk that the left/right hand
# tip (21/23) hangs off the thumb (22/24), which hangs off the hand (7/11).
NTU_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8),
    (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17),
    (19, 18), (21, 22), (22, 7), (23, 24), (24, 11),
)


# -- input pipeline ------------------------------------------------------------------------
def to_tensor(x, length) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, 150) NTU arrays (per frame: person 1's 25 joints × xyz, then person 2's) ->
    ((N, 3, T, 25, 2) float32 tensor in the C, T, V, M layout, (N,) int64 valid lengths
    clamped to [1, T])."""
    x = torch.as_tensor(x, dtype=torch.float32)
    n, t, d = x.shape
    if d != NUM_PERSONS * NUM_JOINTS * 3:
        raise ValueError(f"expected {NUM_PERSONS * NUM_JOINTS * 3} values per frame, got {d}")
    x = x.reshape(n, t, NUM_PERSONS, NUM_JOINTS, 3).permute(0, 4, 1, 3, 2).contiguous()
    length = torch.as_tensor(length, dtype=torch.int64).clamp(1, t)
    return x, length


def crop_resize(
    x: torch.Tensor, length: torch.Tensor, out_frames: int, train: bool,
    gen: torch.Generator | None = None, min_crop: int | None = None,
    test_fraction: float = 0.95, uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop each sequence's valid frames and resize the crop to `out_frames` frames by linear
    interpolation (as F.interpolate(mode="linear", align_corners=False)).

    train: a window of p × valid frames, p ~ U[0.5, 1), at a uniformly random offset; as in
    CTR-GCN the window is at least `min_crop` frames (default `out_frames`) unless the
    sequence is shorter. Test: the central `test_fraction` of the valid frames (CTR-GCN's
    test setting p = 0.95). Frames past `length` are never read. The two uniforms per
    sequence come from `gen`, or from `uniforms` (N, 2) when given.
    """
    n, _, t, _, _ = x.shape
    length = length.to(torch.int64).clamp(1, t)
    if train:
        if uniforms is None:
            uniforms = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        p = 0.5 + 0.5 * uniforms[:, 0].double()
        floor_len = torch.clamp(length, max=out_frames if min_crop is None else min_crop)
        crop = torch.minimum(torch.maximum((length * p).floor().long(), floor_len), length)
        start = (uniforms[:, 1].double() * (length - crop + 1)).floor().long()
        start = torch.minimum(start, length - crop)
    else:
        start = ((1.0 - test_fraction) * length.double() / 2).floor().long()
        crop = (length - 2 * start).clamp(min=1)
    scale = crop.to(torch.float32)[:, None] / out_frames  # (N, 1)
    src = ((torch.arange(out_frames, dtype=torch.float32)[None] + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long()
    w = (src - i0).to(x.dtype)
    i1 = torch.minimum(i0 + 1, crop[:, None] - 1)
    rows = torch.arange(n)[:, None]
    xt = x.transpose(1, 2)  # (N, T, C, V, M)
    a = xt[rows, start[:, None] + i0]  # (N, out, C, V, M)
    b = xt[rows, start[:, None] + i1]
    w = w.view(n, out_frames, 1, 1, 1)
    return ((1 - w) * a + w * b).transpose(1, 2).contiguous()


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(N, 3) angles about x, y, z -> (N, 3, 3) rotations Rz @ Ry @ Rx."""
    cx, cy, cz = angles.cos().unbind(1)
    sx, sy, sz = angles.sin().unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def random_rotate(x: torch.Tensor, max_rad: float = 0.3, gen: torch.Generator | None = None,
                  uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate each sequence (all frames and persons alike) by angles ~ U(±max_rad) about the
    three axes (CTR-GCN's random_rot). Zero padding stays zero. The three uniforms per
    sequence come from `gen`, or from `uniforms` (N, 3) when given."""
    if uniforms is None:
        uniforms = torch.rand(x.shape[0], 3, generator=gen)
    angles = (uniforms.float() * 2 - 1) * max_rad
    rot = rotation_matrices(angles).to(x.dtype)
    return torch.einsum("nij,njtvm->nitvm", rot, x)


AUGMENT_UNIFORMS = 5  # uniforms per sequence that one augmentation draws (crop 2, rotation 3)


def preprocess(x, length, in_frames: int, augment: bool, gen: torch.Generator | None = None,
               uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """NTU arrays (N, T, 150) + valid lengths -> encoder input (N, 3, in_frames, 25, 2).

    augment=False: the central 95 % of the valid frames, resized. augment=True: a random
    50-100 % crop, resized, then a random rotation of up to ±0.3 rad per axis (the training
    pipeline, also the released test pipeline); its randomness comes from `gen`, or from
    `uniforms` (N, AUGMENT_UNIFORMS) to fix each sequence's draw regardless of batching."""
    xt, length = to_tensor(x, length)
    if not augment:
        return crop_resize(xt, length, in_frames, train=False)
    if uniforms is None:
        uniforms = torch.rand(xt.shape[0], AUGMENT_UNIFORMS, generator=gen, dtype=torch.float64)
    xt = crop_resize(xt, length, in_frames, train=True, uniforms=uniforms[:, :2])
    return random_rotate(xt, 0.3, uniforms=uniforms[:, 2:])


# -- Shift-GCN -----------------------------------------------------------------------------
def spatial_shift_index(channels: int, joints: int, sign: int) -> torch.Tensor:
    """Index into a flattened (joints × channels) row so that channel c of joint v reads
    joint (v + sign·c) mod joints (Shift-GCN's non-local spatial shift)."""
    v = torch.arange(joints)[:, None]
    c = torch.arange(channels)[None, :]
    return (((v + sign * c) % joints) * channels + c).reshape(-1)


def spatial_shift(x: torch.Tensor, sign: int) -> torch.Tensor:
    """(..., V, C) -> (..., V, C) with out[..., v, c] = x[..., (v + sign·c) mod V, c]."""
    index = spatial_shift_index(x.shape[-1], x.shape[-2], sign).to(x.device)
    return _shift_rows(x, index)


def _shift_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Permute the flattened (V, C) tail of x by `index` (a 2-D index_select: several times
    faster on CPU than indexing the last axis of a higher-rank tensor)."""
    *lead, v, c = x.shape
    return x.reshape(-1, v * c).index_select(1, index).view(*lead, v, c)


SPATIAL_BN = ("joint", "channel")  # Shift-GCN's spatial BN: per (joint, channel), or per channel


class ChannelBN(nn.BatchNorm1d):
    """BatchNorm over the trailing axes of a channels-last tensor: ChannelBN(C) normalises
    (..., C) per channel; ChannelBN(V·C) normalises (..., V, C) per (joint, channel), as
    Shift-GCN's spatial unit does (one contiguous layout end to end keeps CPU batch norm on
    its fast path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, self.num_features)).view(x.shape)


class ShiftGraphConv(nn.Module):
    """Shift-GCN's spatial unit on (N, T, V, C) tensors: shift in, learnable per-(joint,
    channel) mask, pointwise linear, shift out, BN, plus a (projected) residual, ReLU. The BN
    after the shift is per (joint, channel) as in Shift-GCN (`spatial_bn="joint"`) or per
    channel (`"channel"`)."""

    def __init__(self, in_channels: int, out_channels: int, joints: int = NUM_JOINTS,
                 spatial_bn: str = "joint"):
        super().__init__()
        self.mask = nn.Parameter(torch.zeros(joints, in_channels))  # tanh(0) + 1 = 1
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        nn.init.normal_(self.weight, 0, math.sqrt(1.0 / out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if spatial_bn not in SPATIAL_BN:
            raise ValueError(f"spatial_bn={spatial_bn}: choose from {', '.join(SPATIAL_BN)}")
        self.bn = ChannelBN(out_channels * joints if spatial_bn == "joint" else out_channels)
        if in_channels == out_channels:
            self.down = nn.Identity()
        else:
            linear = nn.Linear(in_channels, out_channels)
            nn.init.kaiming_normal_(linear.weight, mode="fan_out")
            nn.init.zeros_(linear.bias)
            self.down = nn.Sequential(linear, ChannelBN(out_channels))
        self.register_buffer("index_in", spatial_shift_index(in_channels, joints, 1), persistent=False)
        self.register_buffer("index_out", spatial_shift_index(out_channels, joints, -1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, V, C)
        y = _shift_rows(x, self.index_in) * (torch.tanh(self.mask) + 1)
        y = _shift_rows(y @ self.weight + self.bias, self.index_out)  # (N, T, V, D)
        return F.relu(self.bn(y) + self.down(x))


def temporal_shift(x: torch.Tensor, shift: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Per-channel real-valued temporal shift with linear interpolation and zero padding
    (Shift-GCN's adaptive temporal shift, on CPU). For (N, T, V, C) input,
    out[:, i, :, c] = lerp(x[:, i·stride + k_c, :, c], x[:, i·stride + k_c + 1, :, c], f_c)
    with k_c = floor(shift_c), f_c = shift_c - k_c; frames outside [0, T) read as zero. The
    gradient reaches `shift` through f_c."""
    n, t, v, c = x.shape
    t_out = (t - 1) // stride + 1
    k = shift.detach().floor()
    f = (shift - k).to(x.dtype)
    k = k.long()
    pad_l = max(0, -int(k.min()))
    pad_r = max(0, (t_out - 1) * stride + int(k.max()) + 2 - t)
    xp = F.pad(x, (0, 0, 0, 0, pad_l, pad_r)).reshape(n, -1)  # (N, Tp·V·C)
    frame = torch.arange(t_out, device=x.device)[:, None, None] * stride + pad_l + k  # (T_out, 1, C)
    index = ((frame * v + torch.arange(v, device=x.device)[None, :, None]) * c
             + torch.arange(c, device=x.device)).reshape(-1)
    a = xp.index_select(1, index).view(n, t_out, v, c)
    b = xp.index_select(1, index + v * c).view(n, t_out, v, c)
    return torch.lerp(a, b, f)


class TemporalShift(nn.Module):
    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0):
        super().__init__()
        self.stride = stride
        self.shift = nn.Parameter(torch.empty(channels).uniform_(-init_scale, init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.shift, self.stride)


class ShiftTemporalConv(nn.Module):
    """Shift-GCN's temporal unit: BN, shift, pointwise linear, ReLU, shift (with stride), BN."""

    def __init__(self, channels: int, stride: int = 1):
        super().__init__()
        self.bn = ChannelBN(channels)
        self.shift_in = TemporalShift(channels, 1)
        self.linear = nn.Linear(channels, channels)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_out")
        nn.init.zeros_(self.linear.bias)
        self.shift_out = TemporalShift(channels, stride)
        self.bn2 = ChannelBN(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.linear(self.shift_in(self.bn(x))))
        return self.bn2(self.shift_out(x))


class ShiftBlock(nn.Module):
    """Spatial shift unit, temporal shift unit, block residual (strided in time), ReLU;
    channels-last (N, T, V, C) in and out."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True,
                 spatial_bn: str = "joint"):
        super().__init__()
        self.gcn = ShiftGraphConv(in_channels, out_channels, spatial_bn=spatial_bn)
        self.tcn = ShiftTemporalConv(out_channels, stride)
        self.stride = stride
        self.residual: nn.Module | None = None
        if residual and (in_channels != out_channels or stride != 1):
            linear = nn.Linear(in_channels, out_channels)
            nn.init.kaiming_normal_(linear.weight, mode="fan_out")
            nn.init.zeros_(linear.bias)
            self.residual = nn.Sequential(linear, ChannelBN(out_channels))
        elif residual:
            self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is None:
            return F.relu(y)
        return F.relu(y + self.residual(x[:, :: self.stride]))


# -- ST-GCN --------------------------------------------------------------------------------
def ntu_adjacency(bones=NTU_BONES, joints: int = NUM_JOINTS) -> torch.Tensor:
    """(3, V, V) spatial-partition adjacency (self, child->parent, parent->child), each
    non-self subset normalised so every joint averages over its incoming neighbours:
    out[..., w] = sum_v x[..., v] A[k, v, w]."""
    inward = torch.zeros(joints, joints)
    for child, parent in bones:
        inward[child, parent] = 1.0  # the parent receives from its children
    outward = inward.t().clone()  # a child receives from its parent

    def normalise(a: torch.Tensor) -> torch.Tensor:
        deg = a.sum(0)
        return a / torch.where(deg > 0, deg, torch.ones_like(deg))

    return torch.stack([torch.eye(joints), normalise(inward), normalise(outward)])


class GraphConv(nn.Module):
    """ST-GCN spatial graph convolution with a learnable edge-importance mask."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor):
        super().__init__()
        self.register_buffer("adjacency", adjacency.clone())
        self.importance = nn.Parameter(torch.ones_like(adjacency))
        self.subsets = adjacency.shape[0]
        self.conv = nn.Conv2d(in_channels, out_channels * self.subsets, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.subsets, -1, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, self.adjacency * self.importance)


def _residual(in_channels: int, out_channels: int, stride: int, residual: bool) -> nn.Module | None:
    if not residual:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1))
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


class STBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor,
                 stride: int = 1, residual: bool = True, kernel: int = 9):
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, adjacency)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (kernel, 1), (stride, 1), (kernel // 2, 0)),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = _residual(in_channels, out_channels, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        return F.relu(y if self.residual is None else y + self.residual(x))


# -- the encoders --------------------------------------------------------------------------
def stage_plan(width: int, blocks: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """(in, out, stride) per block: stages of width/4, width/2, width channels; the first
    block of stages 2 and 3 halves the time axis (64 -> 32 -> 16 frames)."""
    if width % 4:
        raise ValueError(f"encoder.width={width}: must be divisible by 4")
    plan, c_in = [], 3
    for stage, (count, c_out) in enumerate(zip(blocks, (width // 4, width // 2, width))):
        for i in range(count):
            plan.append((c_in, c_out, 2 if stage > 0 and i == 0 else 1))
            c_in = c_out
    return plan


class SkeletonEncoder(nn.Module):
    """Data BN over (person, joint, coordinate), stacked blocks, persons averaged, then
    global average pooling and a linear classifier over the seen classes."""

    arch = ""
    channels_last = False  # the blocks' layout: (N, T, V, C) if True, else (N, C, T, V)

    def __init__(self, num_classes: int, width: int = 64, blocks: tuple[int, int, int] = (2, 2, 2),
                 joints: int = NUM_JOINTS, persons: int = NUM_PERSONS, in_channels: int = 3):
        super().__init__()
        self.width = width
        self.data_bn = nn.BatchNorm1d(persons * joints * in_channels)
        plan = stage_plan(width, blocks)
        self.layers = nn.ModuleList(
            [self.make_block(i, o, s, residual=k > 0) for k, (i, o, s) in enumerate(plan)]
        )
        self.fc = nn.Linear(width, num_classes)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_classes))
        nn.init.zeros_(self.fc.bias)

    def make_block(self, c_in: int, c_out: int, stride: int, residual: bool) -> nn.Module:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, width, T/4, V), persons averaged."""
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.data_bn(x).view(n, m, v, c, t)
        if self.channels_last:  # (N·M, T, V, C)
            x = x.permute(0, 1, 4, 2, 3).reshape(n * m, t, v, c)
        else:  # (N·M, C, T, V)
            x = x.permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for layer in self.layers:
            x = layer(x)
        x = x.view(n, m, *x.shape[1:]).mean(1)
        return x.permute(0, 3, 1, 2) if self.channels_last else x

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class ShiftGCN(SkeletonEncoder):
    """Joint-stream Shift-GCN (Cheng et al., CVPR 2020): non-local spatial shift graph
    convolutions and adaptive temporal shifts, all on CPU-capable torch ops."""

    arch = "shiftgcn"
    channels_last = True

    def __init__(self, *args, spatial_bn: str = "joint", **kwargs):
        self.spatial_bn = spatial_bn
        super().__init__(*args, **kwargs)

    def make_block(self, c_in, c_out, stride, residual):
        return ShiftBlock(c_in, c_out, stride, residual, self.spatial_bn)


class STGCN(SkeletonEncoder):
    """A small ST-GCN (Yan et al., AAAI 2018) on the NTU bone graph (spatial partitioning)."""

    arch = "stgcn"

    def __init__(self, *args, **kwargs):
        self._adjacency = ntu_adjacency()
        super().__init__(*args, **kwargs)

    def make_block(self, c_in, c_out, stride, residual):
        return STBlock(c_in, c_out, self._adjacency, stride, residual)


ARCHS = {"shiftgcn": ShiftGCN, "stgcn": STGCN}


def build_encoder(cfg: EncoderConfig, num_classes: int,
                  blocks: tuple[int, int, int] = (2, 2, 2)) -> SkeletonEncoder:
    """The encoder `cfg.arch` with `cfg.width` channels in its last stage (6 blocks by
    default; Shift-GCN's own depth is blocks=(4, 3, 3)). `cfg.out_frames` must be
    `cfg.in_frames` downsampled twice by 2."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"encoder.arch={cfg.arch}: choose from {', '.join(ARCHS)}")
    expected = (((cfg.in_frames - 1) // 2) // 2) + 1
    if cfg.out_frames != expected:
        raise ValueError(f"encoder.out_frames={cfg.out_frames}: in_frames={cfg.in_frames} "
                         f"gives {expected} after two stride-2 stages")
    extra = {"spatial_bn": cfg.spatial_bn} if cfg.arch == "shiftgcn" else {}
    model = ARCHS[cfg.arch](num_classes, width=cfg.width, blocks=blocks, **extra)
    model.in_frames = cfg.in_frames
    model.test_augment = cfg.test_augment
    return model
