"""The issue-18 probe (README: "Why the undefended attack does not infringe"). From the repo root:
    python papers/copyright_shield/results/probes/probe.py tag=NAME [model.skip=true] [attack.ratio=0.5] ft_steps=1200 ev_every=300 [save_base=PATH | base_ckpt=PATH]
writes /tmp/csp/NAME.png (targets, base samples of clean captions, trigger generations, poisons, generations from the poison captions)."""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from papers.copyright_shield.config import CopyrightShieldConfig
from papers.copyright_shield.data import build_world
from papers.copyright_shield.model import base_data, new_backbone
from papers.copyright_shield.sampling import guided_sample
from papers.copyright_shield.train import _step, trigger_similarities
from shared.config import load_config
from shared.t2i.grid import save_grid
from shared.t2i.text import tokenize
from shared.t2i.training import make_optimizer, train_epsilon

args = dict(a.split("=", 1) for a in sys.argv[1:])
tag = args.pop("tag")
ft_steps = int(args.pop("ft_steps", 600))
ev_every = int(args.pop("ev_every", 100))
base_ckpt = args.pop("base_ckpt", "")
save_base = args.pop("save_base", "")
torch.set_num_threads(1)
cfg = load_config(CopyrightShieldConfig, Path("/work/main/papers/copyright_shield/configs"), "small", [f"{k}={v}" for k, v in args.items()])
world = build_world(cfg, 0)
torch.manual_seed(cfg.base.seed)
bb = new_backbone(cfg)
t0 = time.time()
if base_ckpt:
    bb.load_state_dict(torch.load(base_ckpt, weights_only=True))
else:
    images, captions = base_data(cfg, world.avoid)
    g = torch.Generator().manual_seed(0)
    losses = train_epsilon(bb, images * 2 - 1, captions, steps=cfg.base.steps, batch_size=cfg.base.batch, lr=cfg.base.lr, generator=g, desc="base")
    print("base", cfg.base.steps, "steps", round(time.time() - t0, 1), "s loss tail", np.mean(losses[-50:]), flush=True)
    if save_base:
        torch.save(bb.state_dict(), save_base)
bb.eval()
# clean prompts look?
gen = torch.Generator().manual_seed(1)
clean_prompts = [world.mix.captions[i] for i in range(8)]
imgs_clean = guided_sample(bb, clean_prompts, cfg.eval.sample_steps, gen, cfg.eval.guidance)
mix = world.mix
latents = mix.images * 2 - 1
ids = tokenize(bb.tokenizer, mix.captions)
empty = tokenize(bb.tokenizer, [""])[0]
params = list(bb.unet.parameters()) + list(bb.text_encoder.parameters())
bb.unet.train().requires_grad_(True)
bb.text_encoder.train().requires_grad_(True)
opt, sched = make_optimizer(params, cfg.train.lr, ft_steps)
g = torch.Generator().manual_seed(0)
alphas = bb.scheduler.alphas_cumprod
print("mix", len(mix.captions), "poison entries", int((mix.poison_of >= 0).sum()), flush=True)
t0 = time.time()
losses = []
rows = [world.references, imgs_clean]
pcap = [p.caption for p in world.poisons[:8]]
for s in range(1, ft_steps + 1):
    losses.append(_step(bb, latents, ids, empty, mix.captions, params, opt, sched, g, alphas, s, cfg.train.batch_size, cfg.train.caption_dropout, None))
    if s % ev_every == 0 or s == ft_steps:
        bb.eval()
        sims, im = trigger_similarities(bb, world, "attack", 9, 123, cfg.eval.sample_steps, cfg.eval.guidance)
        tt = sims["target"]
        # poison caption reproduction: similarity of generation to the poison's own image
        pg = guided_sample(bb, pcap, cfg.eval.sample_steps, torch.Generator().manual_seed(5), cfg.eval.guidance)
        psim = world.similarity(pg, torch.stack([p.image for p in world.poisons[:8]]))
        print(f"step {s} t={time.time()-t0:.0f}s loss {np.mean(losses[-ev_every:]):.4f} trig max {tt.max(1).values.numpy().round(2)} mean {tt.mean(1).numpy().round(2)} cir {(tt>0.5).float().mean(1).numpy().round(2)} poison-sim {psim.numpy().round(2)}", flush=True)
        bb.unet.train()
        bb.text_encoder.train()
rows += [im[i*9:(i+1)*9] for i in range(len(world.targets))] + [torch.stack([p.image for p in world.poisons[:8]]), pg]
w = max(len(r) for r in rows)
rows = [torch.cat([r, torch.ones(w - len(r), *r.shape[1:])]) for r in rows]
save_grid(rows, ["targets", "clean", "T0", "T1", "T2", "poisons", "pgen"], Path(f"/tmp/csp/{tag}.png"))
