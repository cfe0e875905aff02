"""The embedded model's training recipe: a model grown by appended layers computes what it grew from,
so training can go on from the shipped weights with more capacity and nothing forgotten."""

import sys
from pathlib import Path

import pytest
import torch
from transformers import Wav2Vec2ForCTC

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import train  # noqa: E402  (models/ is a folder of scripts, not a package)


def test_grown_model_computes_what_it_grew_from(tmp_path):
    torch.manual_seed(0)
    small = Wav2Vec2ForCTC(train.model_config(layers=2)).eval()
    small.save_pretrained(tmp_path, safe_serialization=True)
    grown = train.grown_from(tmp_path).eval()
    assert grown.config.num_hidden_layers == train.TRANSFORMER_LAYERS > 2
    audio = torch.randn(1, 16000) * 0.1
    with torch.inference_mode():
        want, got = small(audio).logits, grown(audio).logits
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # The new layers are not frozen copies: their output projections receive gradients.
    grown.train()
    grown(audio, labels=torch.tensor([[5, 6, 7]])).loss.backward()
    assert grown.wav2vec2.encoder.layers[-1].feed_forward.output_dense.weight.grad.abs().sum() > 0


def test_growing_refuses_another_architecture(tmp_path):
    from tests.conftest import make_tiny_model

    with pytest.raises(ValueError, match="does not match"):
        train.grown_from(make_tiny_model(tmp_path / "tiny"))


@pytest.mark.parametrize("frozen", [0, 3])
def test_frozen_conv_layers_get_no_gradient_and_the_rest_do(frozen):
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(train.model_config(layers=1)).train()
    train.freeze_conv_layers(model, frozen)
    audio = torch.randn(1, 8000) * 0.1
    model(audio, labels=torch.tensor([[5, 6]])).loss.backward()
    conv = model.wav2vec2.feature_extractor.conv_layers
    assert all(p.grad is None for layer in conv[:frozen] for p in layer.parameters())
    assert all(p.grad is not None for layer in conv[frozen:] for p in layer.parameters())
    assert model.wav2vec2.encoder.layers[0].attention.q_proj.weight.grad is not None


def _has_amx() -> bool:
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


# Measured on an Intel Xeon with AMX (torch 2.13.0, transformers 5.17 and 5.24 alike): the bf16
# forward pass of the older model gives a CTC loss of 8.97 against 3.76 in float32, although
# single convs and linears agree to 0.5 %; on the AMD EPYC machines the recipe was built on it
# agreed within 3 %. Until that is understood, `models/train.py --bf16` is not to be trusted on
# AMX machines; the Whisper-encoder recipe does not use it.
@pytest.mark.xfail(_has_amx(), reason="bf16 autocast of the older model drifts on AMX CPUs", strict=False)
def test_bf16_loss_follows_float32_and_gradients_stay_float32():
    """The recipe's --bf16 step: a loss close to the float32 one (so training follows the same
    path), with float32 gradients for the float32 weights and optimiser."""
    from asrlive.vocab import encode_text

    # Evaluation mode: training mode draws SpecAugment masks at random (numpy's generator, in
    # transformers), so two forward passes would differ by more than precision.
    model = Wav2Vec2ForCTC.from_pretrained(
        Path(__file__).resolve().parents[1] / "models" / "asrlive-tiny-en", use_safetensors=True).eval()
    torch.manual_seed(0)
    audio = torch.randn(2, 16000) * 0.05
    mask = torch.ones_like(audio, dtype=torch.long)
    labels = torch.tensor([encode_text("HELLO"), encode_text("WORLD")])
    full = train.training_loss(model, audio, mask, labels, "cpu", bf16=False)
    half = train.training_loss(model, audio, mask, labels, "cpu", bf16=True)
    assert half.dtype == torch.float32
    assert half.item() != full.item()  # the forward pass did run in bfloat16
    assert half.item() == pytest.approx(full.item(), rel=0.03)
    half.backward()
    assert model.lm_head.weight.grad.dtype == torch.float32
    assert model.lm_head.weight.grad.abs().sum() > 0
