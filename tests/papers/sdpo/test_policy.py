"""SDPO's policy on a local Stable-Diffusion-style pipeline: LoRA through peft trains only the
adapters, and the reference (D3PO) is the UNet with the adapters switched off."""

import pytest
import torch

from papers.sdpo.config import PolicyConfig
from papers.sdpo.model import Policy
from shared.t2i.sd import load_stable_diffusion, write_tiny_sd


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture
def backbone(tiny_dir):
    return load_stable_diffusion(str(tiny_dir), "cpu")


def unet_eps(unet, inputs):
    return unet(inputs[0], inputs[1], encoder_hidden_states=inputs[2]).sample


@torch.no_grad()
def test_lora_policy_trains_only_lora_and_reference_disables_it(backbone):
    torch.manual_seed(0)
    inputs = (torch.randn(2, *backbone.latent_shape), torch.tensor([999, 250]),
              backbone.encode_prompts(["a cat", "a dog"]))
    before = unet_eps(backbone.unet, inputs)
    policy = Policy(backbone, PolicyConfig(lora_rank=4))

    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    assert {id(p) for p in policy.parameters()} == {id(p) for p in backbone.parameters() if p.requires_grad}
    assert torch.equal(policy.eps(*inputs), before)  # lora_B starts at zero

    for name, param in backbone.unet.named_parameters():
        if ".lora_B." in name:
            param.add_(0.1 * torch.randn_like(param))
    perturbed = policy.eps(*inputs)
    assert (perturbed - before).abs().max() > 1e-3
    with policy.reference() as reference:
        assert torch.equal(unet_eps(reference, inputs), before)
    assert torch.equal(policy.eps(*inputs), perturbed)  # adapters back on after the block
