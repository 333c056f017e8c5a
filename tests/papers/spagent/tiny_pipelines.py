"""Tiny random-weight diffusers pipelines built from configs (no download): one builder per
adapter of papers/spagent/adapters.py."""

from __future__ import annotations

import torch


def tokenizer():
    """A word-level fast tokenizer (lower-case letters words, pad/unk/bos/eos)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<s>", "</s>", "a", "red", "green", "parrot", "flying", "make", "it", "the", "cat"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=8)


def clip_text(hidden=8, projection=8):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(hidden_size=hidden, intermediate_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, vocab_size=16, max_position_embeddings=8,
                                        projection_dim=projection, bos_token_id=2, eos_token_id=3, pad_token_id=0))


def clip_vision(hidden=8, projection=8, image_size=16):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=hidden, intermediate_size=16, num_hidden_layers=1,
                                                          num_attention_heads=2, image_size=image_size,
                                                          patch_size=image_size // 2,
                                                          projection_dim=projection, num_channels=3))


def image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(crop_size=16, size={"shortest_edge": 16})


def vae2d(latent=4):
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=latent,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=2, sample_size=16)


def unet2d(in_channels=4, cross=8):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=in_channels,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross,
                                attention_head_dim=2, norm_num_groups=2)


def ddim():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1)


def cogvideox(kind: str):
    import diffusers
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16 if kind == "i2v" else 8, in_channels=8 if kind == "i2v" else 4, out_channels=4,
        time_embed_dim=2, text_embed_dim=16, num_layers=1, sample_width=2, sample_height=2, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=8, use_rotary_positional_embeddings=kind == "i2v")
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    text = T5EncoderModel(T5Config(d_model=16, d_ff=16, num_layers=1, num_heads=2, d_kv=8, vocab_size=16,
                                   decoder_start_token_id=0, pad_token_id=0))
    cls = {"t2v": "CogVideoXPipeline", "i2v": "CogVideoXImageToVideoPipeline", "v2v": "CogVideoXVideoToVideoPipeline"}[kind]
    return getattr(diffusers, cls)(tokenizer=tokenizer(), text_encoder=text, vae=vae, transformer=transformer,
                                   scheduler=CogVideoXDDIMScheduler())


def svd():
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )

    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 32), layers_per_block=1, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=8,
        num_attention_heads=(2, 2), addition_time_embed_dim=4, projection_class_embeddings_input_dim=12)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=(32, 32), in_channels=3, out_channels=3, latent_channels=4,
                                       down_block_types=("DownEncoderBlock2D",) * 2, layers_per_block=1)
    sched = EulerDiscreteScheduler(beta_schedule="scaled_linear", interpolation_type="linear", use_karras_sigmas=True,
                                   prediction_type="v_prediction", timestep_spacing="leading")
    # SVD resizes its conditioning image to 224 × 224 for CLIP whatever the video size
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=clip_vision(image_size=224), unet=unet, scheduler=sched,
                                        feature_extractor=image_processor())


def i2vgenxl():
    from diffusers import I2VGenXLPipeline
    from diffusers.models.unets.unet_i2vgen_xl import I2VGenXLUNet

    unet = I2VGenXLUNet(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
                        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=8,
                        attention_head_dim=4, norm_num_groups=2)
    return I2VGenXLPipeline(vae=vae2d(), text_encoder=clip_text(), tokenizer=tokenizer(), unet=unet, scheduler=ddim(),
                            image_encoder=clip_vision(), feature_extractor=image_processor())


def animatediff():
    from diffusers import AnimateDiffPipeline, MotionAdapter

    adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=2, motion_max_seq_length=8)
    return AnimateDiffPipeline(vae=vae2d(), text_encoder=clip_text(), tokenizer=tokenizer(), unet=unet2d(),
                               motion_adapter=adapter, scheduler=ddim(), feature_extractor=None, image_encoder=None)


def modelscope():
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    unet = UNet3DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                                up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=2)
    return TextToVideoSDPipeline(vae=vae2d(), text_encoder=clip_text(), tokenizer=tokenizer(), unet=unet, scheduler=ddim())


def pix2pix():
    from diffusers import StableDiffusionInstructPix2PixPipeline

    return StableDiffusionInstructPix2PixPipeline(vae=vae2d(), text_encoder=clip_text(), tokenizer=tokenizer(),
                                                  unet=unet2d(in_channels=8), scheduler=ddim(), safety_checker=None,
                                                  feature_extractor=None, requires_safety_checker=False)


def sd():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=vae2d(), text_encoder=clip_text(), tokenizer=tokenizer(), unet=unet2d(),
                                   scheduler=ddim(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


BUILDERS = {
    "CogVideoXPipeline": (lambda: cogvideox("t2v"), 5, 16), "CogVideoXImageToVideoPipeline": (lambda: cogvideox("i2v"), 5, 16),
    "CogVideoXVideoToVideoPipeline": (lambda: cogvideox("v2v"), 5, 16), "StableVideoDiffusionPipeline": (svd, 2, 16),
    "I2VGenXLPipeline": (i2vgenxl, 2, 16), "AnimateDiffPipeline": (animatediff, 2, 16),
    "TextToVideoSDPipeline": (modelscope, 2, 16), "StableDiffusionInstructPix2PixPipeline": (pix2pix, 1, 16),
    "StableDiffusionPipeline": (sd, 1, 16),
}


def build(name: str):
    torch.manual_seed(0)
    return BUILDERS[name][0]()
