"""The ε-MSE loop: exactly plain DDPM training without an extra term (same draws, same
operations), and an extra term sees the step's batch, noisy latents, timesteps, noise and
prediction and is trained through."""

import pytest
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup

from shared.t2i.backbone import pixel_weights
from shared.t2i.scenes import make_dataset
from shared.t2i.text import tokenize
from shared.t2i.training import EpsilonBatch, torch_threads, train_epsilon

from .conftest import tiny_backbone

STEPS, BATCH, LR = 3, 4, 1e-3


@pytest.fixture(scope="module")
def data():
    return make_dataset(16, 8, seed=0)


def reference_ddpm(backbone, images, captions, generator):
    """Plain DDPM training as SDPO's base model was pre-trained before the move (515b945)."""
    ids = tokenize(backbone.tokenizer, captions)
    params = [*backbone.unet.parameters(), *backbone.text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=LR)
    schedule = get_cosine_schedule_with_warmup(opt, int(0.05 * STEPS), STEPS)
    alphas = backbone.scheduler.alphas_cumprod
    backbone.train().requires_grad_(True)
    losses = []
    for _ in range(STEPS):
        pick = torch.randint(len(images), (BATCH,), generator=generator)
        x0 = images[pick]
        t = torch.randint(1000, (len(pick),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        abar = alphas[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        cond = backbone.text_encoder(input_ids=ids[pick]).last_hidden_state
        loss = torch.nn.functional.mse_loss(backbone.unet(x_t, t, cond).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def run(data, **kwargs):
    backbone = tiny_backbone()
    losses = train_epsilon(backbone, *data, steps=STEPS, batch_size=BATCH, lr=LR,
                           generator=torch.Generator().manual_seed(0), **kwargs)
    return backbone, losses


def test_without_an_extra_term_it_is_plain_ddpm_bit_for_bit(data):
    ours, losses = run(data)
    plain = tiny_backbone()
    expected = reference_ddpm(plain, *data, torch.Generator().manual_seed(0))
    assert losses == expected
    theirs = pixel_weights(plain)
    assert all(torch.equal(v, theirs[k]) for k, v in pixel_weights(ours).items())
    assert not torch.equal(pixel_weights(tiny_backbone())["unet.conv_in.weight"], theirs["unet.conv_in.weight"])


def test_an_extra_term_sees_the_step_and_is_added_to_the_loss(data):
    images, captions = data
    seen, terms = [], []

    def term(batch: EpsilonBatch) -> torch.Tensor:
        seen.append(batch)
        abar = batch.alphas_cumprod[batch.t].view(-1, 1, 1, 1)
        torch.testing.assert_close(batch.x_t, abar.sqrt() * batch.x0 + (1 - abar).sqrt() * batch.noise)
        assert torch.equal(batch.x0, images[batch.index])
        assert batch.captions == [captions[i] for i in batch.index.tolist()]
        assert torch.equal(batch.ids, tokenize(batch.backbone.tokenizer, batch.captions))
        assert batch.pred.shape == batch.noise.shape == (BATCH, 3, 8, 8) and batch.pred.requires_grad
        assert batch.cond.shape == (BATCH, 16, 16) and batch.cond.requires_grad
        assert batch.t.shape == (BATCH,) and 0 <= batch.t.min() and batch.t.max() < 1000
        value = 0.5 * batch.pred.pow(2).mean()
        mse = torch.nn.functional.mse_loss(batch.pred, batch.noise)
        terms.append((mse.item(), value.item()))
        return value

    backbone, losses = run(data, extra_loss=term)
    assert [b.step for b in seen] == list(range(STEPS))
    assert losses == pytest.approx([m + v for m, v in terms], rel=1e-6)
    plain, plain_losses = run(data)
    assert losses[0] != plain_losses[0]  # same first draw, the term counted in the loss
    assert not torch.equal(pixel_weights(backbone)["unet.conv_out.weight"],
                           pixel_weights(plain)["unet.conv_out.weight"])  # and in the gradient
    assert torch.equal(seen[0].index, torch.randint(16, (BATCH,), generator=torch.Generator().manual_seed(0)))


def test_a_frozen_text_encoder_stays_as_it_was(data):
    backbone, _ = run(data, train_text_encoder=False)
    init = tiny_backbone()
    after, before = pixel_weights(backbone), pixel_weights(init)
    assert all(torch.equal(after[k], before[k]) for k in after if k.startswith("text_encoder."))
    assert not torch.equal(after["unet.conv_out.weight"], before["unet.conv_out.weight"])
    assert not backbone.text_encoder.training and not any(p.requires_grad for p in backbone.text_encoder.parameters())


def test_latents_and_captions_must_pair_up(data):
    images, captions = data
    with pytest.raises(ValueError, match="captions"):
        train_epsilon(tiny_backbone(), images, captions[:-1], steps=1, batch_size=2, lr=LR,
                      generator=torch.Generator())


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
