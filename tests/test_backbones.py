"""Backbone adapters: lookup, sizes, prompt/video encoding vs the stock pipelines, training objectives, tiny configs."""

import json

import pytest
import torch

from mmphys_diffusers.backbones import (
    CogVideoXAdapter,
    WanAdapter,
    build_byte_tokenizer,
    build_word_tokenizer,
    get_backbone_adapter,
    load_base_pipeline,
    tiny_components,
)
from mmphys_diffusers.errors import MMPhysInputError

TINY = ["tiny-cogvideox", "tiny-wan"]


@pytest.fixture(scope="module", params=TINY)
def tiny(request):
    name = request.param
    return name, get_backbone_adapter(name), tiny_components(name)


def test_lookup_by_name_class_instance_pipeline_and_teacher():
    comps = tiny_components("tiny-wan")
    wan = get_backbone_adapter("wan")
    assert isinstance(wan, WanAdapter)
    assert get_backbone_adapter("tiny-wan") is wan
    assert get_backbone_adapter("WanPipeline") is wan
    assert get_backbone_adapter(comps["transformer"]) is wan
    assert get_backbone_adapter(type(comps["transformer"])) is wan
    assert get_backbone_adapter(wan.stock_pipeline_class(**comps)) is wan
    assert get_backbone_adapter(comps["vae"]) is wan and wan.vae_class is type(comps["vae"])
    assert isinstance(get_backbone_adapter("CogVideoX"), CogVideoXAdapter)
    teacher = wan.build_teacher(comps["transformer"])
    assert type(teacher) is not type(comps["transformer"])
    assert get_backbone_adapter(teacher) is wan
    with pytest.raises(MMPhysInputError, match="unknown backbone 'hunyuan'"):
        get_backbone_adapter("hunyuan")
    with pytest.raises(MMPhysInputError, match="no backbone adapter for Linear"):
        get_backbone_adapter(torch.nn.Linear(2, 2))
    with pytest.raises(MMPhysInputError, match="is not a CogVideoXTransformer3DModel"):
        get_backbone_adapter("cogvideox").build_teacher(comps["transformer"])


def test_video_size_checks_and_latent_shape(tiny):
    name, adapter, comps = tiny
    vae, transformer = comps["vae"], comps["transformer"]
    adapter.check_video_size(9, 32, 48, vae, transformer)
    with pytest.raises(MMPhysInputError, match=r"num_frames=8 .* expected k\*4\+1"):
        adapter.check_video_size(8, 32, 32, vae, transformer)
    with pytest.raises(MMPhysInputError, match="height=40 .* multiple of 16"):
        adapter.check_video_size(9, 40, 32, vae, transformer)
    with pytest.raises(MMPhysInputError, match="width=24"):
        adapter.check_video_size(9, 32, 24, vae, transformer)
    shape = adapter.latent_shape(2, 9, 32, 48, vae, transformer)
    expected = (2, 3, 4, 4, 6) if adapter.latent_layout == "BFCHW" else (2, 4, 3, 4, 6)
    assert shape == expected


def test_encode_prompt_matches_stock_pipeline(tiny):
    name, adapter, comps = tiny
    stock = adapter.stock_pipeline_class(**comps)
    prompts = ["a red ball  bounces &amp; rolls", "ünïcode 🙂 caption"]
    ours = adapter.encode_prompt(comps["text_encoder"], comps["tokenizer"], prompts, 16)
    theirs, _ = stock.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=16)
    assert ours.shape == (2, 16, 16)
    assert torch.equal(ours, theirs)


def test_encode_decode_video_scaling_and_layout(tiny):
    name, adapter, comps = tiny
    vae = comps["vae"]
    video = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        latents = adapter.encode_video(vae, video)
        raw = vae.encode(video).latent_dist.mode()  # [B,C,F,h,w]
        if name == "tiny-cogvideox":
            expected = (raw * vae.config.scaling_factor).permute(0, 2, 1, 3, 4)
        else:
            mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
            std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
            expected = (raw - mean) / std
        assert torch.allclose(latents, expected, atol=1e-6)
        assert latents.shape == adapter.latent_shape(1, 9, 32, 32, vae, comps["transformer"])
        # decode undoes the scaling: same pixels as decoding the raw posterior mode, up to the float
        # rounding of (x - mean) / std * std + mean carried through the decoder (seen: 1e-5)
        decoded = adapter.decode_latents(vae, latents)
        reference = vae.decode(raw).sample
        assert decoded.shape == (1, 3, 9, 32, 32)
        assert torch.allclose(decoded, reference, atol=1e-4)
        sampled = adapter.encode_video(vae, video, generator=torch.Generator().manual_seed(1), sample=True)
        assert not torch.equal(sampled, latents)
    with pytest.raises(MMPhysInputError, match=r"video must be \[B,3,F,H,W\]"):
        adapter.encode_video(vae, torch.zeros(3, 9, 32, 32))


def test_transformer_kwargs_rotary_matches_stock():
    adapter = get_backbone_adapter("cogvideox")
    comps = tiny_components("tiny-cogvideox")
    stock = adapter.stock_pipeline_class(**comps)
    latents = torch.zeros(1, 3, 4, 4, 6)
    ours = adapter.transformer_kwargs(comps["transformer"], latents, 32, 48, 9, comps["vae"])["image_rotary_emb"]
    theirs = stock._prepare_rotary_positional_embeddings(32, 48, 3, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    wan = get_backbone_adapter("wan")
    assert wan.transformer_kwargs(tiny_components("tiny-wan")["transformer"], latents, 32, 48, 9) == {}


def test_training_objective_cogvideox_v_prediction():
    adapter = get_backbone_adapter("cogvideox")
    scheduler = adapter.training_scheduler(tiny_components("tiny-cogvideox")["scheduler"])
    assert scheduler.config.prediction_type == "v_prediction"
    t = adapter.sample_timesteps(scheduler, 4, generator=torch.Generator().manual_seed(0))
    t_again = adapter.sample_timesteps(scheduler, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, t_again) and t.dtype == torch.int64 and int(t.min()) >= 0 and int(t.max()) < 1000
    latents, noise = torch.randn(4, 3, 4, 4, 4), torch.randn(4, 3, 4, 4, 4)
    noisy, target = adapter.noisy_latents_and_target(scheduler, latents, noise, t)
    a = scheduler.alphas_cumprod[t].float().view(-1, 1, 1, 1, 1)
    assert torch.allclose(noisy, a.sqrt() * latents + (1 - a).sqrt() * noise, atol=1e-5)
    assert torch.allclose(target, a.sqrt() * noise - (1 - a).sqrt() * latents, atol=1e-5)
    # v-prediction identity: x0 = sqrt(a) x_t - sqrt(1-a) v
    assert torch.allclose(a.sqrt() * noisy - (1 - a).sqrt() * target, latents, atol=1e-4)


def test_training_objective_wan_flow_matching():
    adapter = get_backbone_adapter("wan")
    scheduler = adapter.training_scheduler(tiny_components("tiny-wan")["scheduler"])
    assert scheduler.config.shift == 3.0  # taken from the UniPC flow_shift
    t = adapter.sample_timesteps(scheduler, 64, generator=torch.Generator().manual_seed(0))
    assert t.shape == (64,) and float(t.min()) >= 0 and float(t.max()) <= 1000
    assert float(t.median()) > 500  # shift 3 pushes sigmas towards noise
    latents, noise = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    t2 = torch.tensor([0.0, 1000.0])
    noisy, target = adapter.noisy_latents_and_target(scheduler, latents, noise, t2)
    assert torch.allclose(noisy[0], latents[0]) and torch.allclose(noisy[1], noise[1])
    assert torch.allclose(target, noise - latents)


def test_byte_tokenizer_any_caption_and_round_trip(tmp_path):
    tokenizer = build_byte_tokenizer(model_max_length=32)
    assert len(tokenizer) == 259
    caption = "Ünïcödé — 物理 🙂 <b>"
    ids = tokenizer(caption).input_ids
    assert ids[-1] == tokenizer.eos_token_id == 1 and tokenizer.unk_token_id not in ids
    assert len(ids) == len(caption.encode("utf-8")) + 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption
    tokenizer.save_pretrained(tmp_path)
    reloaded = type(tokenizer).from_pretrained(tmp_path)
    assert reloaded(caption).input_ids == ids and reloaded.pad_token_id == 0


def test_word_tokenizer_one_token_per_word_unknown_words_and_round_trip(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = build_word_tokenizer(["A red ball; two boxes (a green one) .", "blue"], model_max_length=12)
    assert len(tokenizer) == 3 + len({"a", "red", "ball", ";", "two", "boxes", "(", "green", "one", ")", ".", "blue"})
    # a run of punctuation is one piece, as in the Whitespace pre-tokenizer
    assert tokenizer.convert_ids_to_tokens(tokenizer("one).").input_ids) == ["one", "<unk>", "</s>"]
    ids = tokenizer("Two RED balls (a blue one)").input_ids
    tokens = tokenizer.convert_ids_to_tokens(ids)
    # lower-cased, punctuation split off, a word outside the vocabulary is <unk>, eos appended
    assert tokens == ["two", "red", "<unk>", "(", "a", "blue", "one", ")", "</s>"]
    # the colour is one token whose id depends on the colour alone
    red, green = tokenizer("a red ball").input_ids, tokenizer("a green ball").input_ids
    assert [i for i, (r, g) in enumerate(zip(red, green)) if r != g] == [1]
    padded = tokenizer("a red ball", padding="max_length", max_length=12, truncation=True).input_ids
    assert padded[:4] == red and set(padded[4:]) == {tokenizer.pad_token_id}
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded("Two RED balls (a blue one)").input_ids == ids and reloaded.model_max_length == 12
    with pytest.raises(MMPhysInputError, match="vocabulary is empty"):
        build_word_tokenizer(["  "])


def test_wan_prompt_embeddings_see_a_colour_late_in_a_long_caption():
    """With the word tokenizer a colour 20 words into a caption changes the text embeddings; the 16-byte
    tokenizer the first bundled models used truncated it away (both prompts read "Two balls colli")."""
    from mmphys_diffusers.simulation import caption_vocabulary

    adapter = get_backbone_adapter("wan")
    prompts = [f"Two balls collide: a red ball moves right into a {c} ball at rest." for c in ("blue", "green")]
    word = build_word_tokenizer(caption_vocabulary(), model_max_length=32)
    comps = tiny_components("tiny-wan", seed=0, text_encoder={"vocab_size": len(word)})
    embeds = adapter.encode_prompt(comps["text_encoder"], word, prompts, adapter.default_sequence_length(comps["transformer"], word))
    assert embeds.shape[1] == 32 and not torch.allclose(embeds[0], embeds[1])
    byte = tiny_components("tiny-wan", seed=0)
    embeds = adapter.encode_prompt(byte["text_encoder"], byte["tokenizer"], prompts, adapter.default_sequence_length(byte["transformer"], byte["tokenizer"]))
    assert torch.equal(embeds[0], embeds[1])


def test_tiny_components_seeded_and_load_base_pipeline(tmp_path):
    a, b = tiny_components("tiny-wan", seed=3), tiny_components("tiny-wan", seed=3)
    c = tiny_components("tiny-wan", seed=4)
    sa, sb, sc = (x["transformer"].state_dict() for x in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    over = tiny_components("tiny-cogvideox", transformer={"num_layers": 1})
    assert over["transformer"].config.num_layers == 1
    pipe = load_base_pipeline("tiny-cogvideox")
    assert type(pipe).__name__ == "CogVideoXPipeline"
    pipe.save_pretrained(tmp_path / "base")
    assert json.loads((tmp_path / "base" / "model_index.json").read_text())["_class_name"] == "CogVideoXPipeline"
    reloaded = load_base_pipeline(tmp_path / "base")
    assert type(reloaded).__name__ == "CogVideoXPipeline"
    with pytest.raises(MMPhysInputError, match="unknown tiny config 'tiny-sd'"):
        load_base_pipeline("tiny-sd")
    with pytest.raises(MMPhysInputError, match="unknown tiny config"):
        tiny_components("cogvideox")
