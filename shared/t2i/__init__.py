"""The tiny text-to-image substrate: building blocks for papers that train or fine-tune a
small diffusion model offline (SDPO fine-tunes one with RL; CopyrightShield trains one).

- `scenes`: procedural shapes, their coverage masks (per element in multi-element layouts)
  and captions from a small grammar; a captioned dataset generator.
- `text`: a word-level tokenizer over a given vocabulary and a small CLIP text encoder.
- `backbone`: the `Backbone` contract (UNet ε-predictor, prompt encoder, DDIM scheduler,
  image <-> latent maps), the pixel-space `PixelBackbone`, the UNet and scheduler builders.
- `training`: the ε-MSE training loop with a hook for extra loss terms; AdamW + warm-up cosine.
- `sampling`: diffusers' DDIM sampler for evaluation.
- `sd`: a local Stable-Diffusion-style pipeline (VAE encode/decode) and a tiny random one for
  tests.
- `cache`: the checksummed, locked build cache for directories of files.
- `grid`: image-grid PNGs.

Papers define their models, data splits and methods on top; `shared` imports no paper.
"""
