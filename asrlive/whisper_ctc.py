"""A CTC recogniser on a pretrained Whisper encoder, run as a frame-exact conv stack.

Whisper's front end is a log-mel filter bank (400-sample Hann window, 160-sample hop) and two
k=3 convs (strides 1 and 2). Whisper pads all three (a centred STFT, ``padding=1`` convs) and
clamps the log-mel to the window's maximum − 8 dB. Both make a frame depend on where the window
starts, so here the pretrained weights run unpadded: STFT frame m covers samples
[160 m, 160 m + 400), the convs are valid, and the clamp floor is a fixed level. The front end is
then the strided stack (kernels 400, 3, 3; strides 160, 1, 2): a 1040-sample receptive field and
320-sample (20 ms) frames, the geometry contract of ``asrlive.geometry``, and streamed frames
equal offline ones once the context covers the transformer's reach. The transformer's sinusoidal
positions are cut to the window, as whisper.cpp's ``audio_ctx`` does.

A model folder holds ``config.json`` (``model_type`` ``asrlive-whisper-ctc``), ``encoder.safetensors``
(the frozen pretrained encoder and mel filters; never changes between retrains),
``head.safetensors`` (the trained CTC head, and the encoder's top layers where training adapted
them, named ``encoder.<tensor>``: they replace those of ``encoder.safetensors``) and ``vocab.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .geometry import Geometry
from .vocab import BLANK, WORD_DELIMITER
from .whisper_ctc_folder import MODEL_TYPE, read_config

N_FFT = 400
MEL_HOP = 160
# Front end as a strided stack on raw samples: the STFT window, then the two convs.
CONV_KERNEL = (N_FFT, 3, 3)
CONV_STRIDE = (MEL_HOP, 1, 2)
FRONT_END = Geometry(kernels=CONV_KERNEL, strides=CONV_STRIDE)


@dataclass(frozen=True)
class EncoderShape:
    d_model: int
    layers: int
    heads: int
    n_mels: int = 80
    max_positions: int = 1500

    @property
    def ffn(self) -> int:
        return 4 * self.d_model


@dataclass(frozen=True)
class HeadShape:
    """The trainable part on the chosen encoder layer: a few layers that see the whole window
    (bidirectional LSTM, ``d_model`` units per direction, or transformer), then the CTC output
    layer. ``layers`` 0 is a linear probe."""

    read_layer: int
    d_model: int
    layers: int
    heads: int
    vocab_size: int
    kind: str = "lstm"


def mel_filters(n_mels: int) -> torch.Tensor:
    """Whisper's filter bank, (n_mels, N_FFT // 2 + 1): librosa's Slaney-style mel filters for a
    400-point FFT at 16 kHz. Stored in each model folder; computed only to make one."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=8000.0, sampling_rate=16000, norm="slaney", mel_scale="slaney")
    return torch.from_numpy(bank.T.astype("float32").copy())


def dft_kernels() -> torch.Tensor:
    """The Hann-windowed real DFT as conv kernels, (2 * bins, 1, N_FFT): cosines then sines. A
    strided conv with them is the STFT (to float rounding) in an op every exporter and runtime
    runs fast."""
    bins = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * math.pi * bins * torch.arange(N_FFT, dtype=torch.float64)[None, :] / N_FFT
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    return (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window).float()[:, None, :]


class LogMel(nn.Module):
    """Whisper's log-mel features without padding and with a fixed clamp floor (log10 units)."""

    def __init__(self, filters: torch.Tensor, floor: float):
        super().__init__()
        self.register_buffer("filters", filters)  # (n_mels, n_fft // 2 + 1)
        self.register_buffer("dft", dft_kernels(), persistent=False)
        self.floor = floor

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """(batch, samples) → (batch, n_mels, frames)."""
        spec = F.conv1d(samples[:, None], self.dft.to(samples.dtype), stride=MEL_HOP)
        bins = N_FFT // 2 + 1
        mel = self.filters.to(samples.dtype) @ (spec[:, :bins] ** 2 + spec[:, bins:] ** 2)
        log_spec = torch.clamp(mel, min=1e-10).log10()
        return (torch.maximum(log_spec, torch.tensor(self.floor, dtype=samples.dtype)) + 4.0) / 4.0


class Block(nn.Module):
    """Pre-LN transformer layer, Whisper's layout (no bias on the key projection)."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.attn_ln = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.ffn_ln = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def attend(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
               key_padding: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The layer on frames ``x`` (batch, frames, d) that also attend to earlier frames' cached
        keys and values ``past`` (each (batch, heads, earlier, d / heads)). Returns the output
        and ``x``'s own keys and values, for a cache."""
        b, t, d = x.shape
        h = self.attn_ln(x)
        q, k, v = (proj(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for proj in (self.q, self.k, self.v))
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        mask = None if key_padding is None else ~key_padding[:, None, None, :]
        a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ffn_ln(x)))), (k, v)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend(x, key_padding=key_padding)[0]


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's fixed positional embedding (timescales up to 10 000)."""
    log_timescale = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-log_timescale * torch.arange(channels // 2, dtype=torch.float64))
    t = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1).float()


class FeatureExtractor(nn.Module):
    """Log-mel and the two valid convs: (batch, samples) → (batch, d_model, frames)."""

    def __init__(self, shape: EncoderShape, mel: LogMel):
        super().__init__()
        self.mel = mel
        self.conv1 = nn.Conv1d(shape.n_mels, shape.d_model, 3)
        self.conv2 = nn.Conv1d(shape.d_model, shape.d_model, 3, stride=2)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv2(F.gelu(self.conv1(self.mel(samples)))))


class WhisperEncoder(nn.Module):
    def __init__(self, shape: EncoderShape, mel: LogMel):
        super().__init__()
        self.shape = shape
        self.feature_extractor = FeatureExtractor(shape, mel)
        self.register_buffer("positions", sinusoids(shape.max_positions, shape.d_model), persistent=False)
        self.blocks = nn.ModuleList(Block(shape.d_model, shape.heads, shape.ffn) for _ in range(shape.layers))
        self.ln_post = nn.LayerNorm(shape.d_model)

    def hiddens(self, samples: torch.Tensor, layers: set[int]) -> dict[int, torch.Tensor]:
        """Outputs of the transformer layers in ``layers`` (1-based; the last includes the final
        LayerNorm; 0 is the conv features with positions added), each (batch, frames, d_model).
        Layers past the highest asked for are not run."""
        x = self.with_positions(self.features(samples), 0)
        out = {0: x} if 0 in layers else {}
        for n, block in enumerate(self.blocks[:max(layers)], start=1):
            x = block(x)
            if n in layers:
                out[n] = self.layer_output(x, n)
        return out

    def hidden(self, samples: torch.Tensor, upto: int) -> torch.Tensor:
        return self.hiddens(samples, {upto})[upto]

    def features(self, samples: torch.Tensor) -> torch.Tensor:
        """The front end's conv features (batch, frames, d_model), without positions."""
        return self.feature_extractor(samples).transpose(1, 2)

    def with_positions(self, features: torch.Tensor, first: int) -> torch.Tensor:
        """Conv features (batch, frames, d_model) plus the positions ``first``, ``first`` + 1, …"""
        end = first + features.shape[1]
        if end > self.shape.max_positions:
            raise ValueError(f"{end} frames in one window; the encoder takes at most {self.shape.max_positions} "
                             f"({self.shape.max_positions * 0.02:.0f} s)")
        return features + self.positions[first:end].to(features.dtype)

    def layer_output(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """What layer ``n`` hands on: the last layer's output goes through the final LayerNorm."""
        return self.ln_post(x) if n == self.shape.layers else x

    def attend(self, x: torch.Tensor, upto: int, past: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
               ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Layers 1..``upto`` on frames ``x`` (positions added), which also attend to earlier
        frames' keys and values ``past`` (one pair per layer). Returns layer ``upto``'s output
        and ``x``'s keys and values at each layer."""
        own = []
        for n, block in enumerate(self.blocks[:upto]):
            x, kv = block.attend(x, None if past is None else past[n])
            own.append(kv)
        return self.layer_output(x, upto), own


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of the batch reversed within its own length; padding stays at the end."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return torch.gather(x, 1, index[:, :, None].expand_as(x))


class BiLSTM(nn.Module):
    """Bidirectional LSTM layers whose backward direction starts at each sequence's own last
    frame, so padding never reaches it: what inference on the unpadded window computes, without
    the cost of packed sequences (five times slower per step on CPU)."""

    def __init__(self, d_in: int, hidden: int, layers: int):
        super().__init__()
        self.fwd = nn.ModuleList(nn.LSTM(d_in if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers))
        self.bwd = nn.ModuleList(nn.LSTM(d_in if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` None: every sequence fills the batch's length (no padding)."""
        def reverse(seq: torch.Tensor) -> torch.Tensor:
            return seq.flip(1) if lengths is None else reverse_within(seq, lengths)

        for fwd, bwd in zip(self.fwd, self.bwd):
            back = reverse(bwd(reverse(x))[0])
            x = torch.cat([fwd(x)[0], back], dim=-1)
        return x


class CTCHead(nn.Module):
    def __init__(self, encoder_d: int, shape: HeadShape):
        super().__init__()
        if shape.kind not in ("lstm", "transformer"):
            raise ValueError(f"unknown head kind {shape.kind!r}")
        self.kind = shape.kind
        # Inner encoder layers have no LayerNorm after them, unlike the last.
        self.in_ln = nn.LayerNorm(encoder_d)
        if shape.kind == "lstm":
            self.lstm = BiLSTM(encoder_d, shape.d_model, shape.layers) if shape.layers else None
            width = 2 * shape.d_model if shape.layers else encoder_d
        else:
            self.proj = nn.Linear(encoder_d, shape.d_model)
            self.blocks = nn.ModuleList(Block(shape.d_model, shape.heads, 4 * shape.d_model) for _ in range(shape.layers))
            width = shape.d_model
        self.ln = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, shape.vocab_size)

    def forward(self, hidden: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        x = self.in_ln(hidden)
        if self.kind == "lstm":
            if self.lstm is not None:
                x = self.lstm(x, None if key_padding is None else (~key_padding).sum(1))
        else:
            x = self.proj(x)
            for block in self.blocks:
                x = block(x, key_padding)
        return self.lm_head(self.ln(x))


@dataclass
class CTCOutput:
    logits: torch.Tensor


class WhisperCTC(nn.Module):
    """(batch, samples) at 16 kHz → CTC logits (batch, frames, vocab); frames follow the geometry.

    ``silence_after`` samples of digital silence follow every input the encoder reads, a window
    or a whole file: Whisper was trained on speech followed by silence or padding, and its last
    frames read better with some after them than with an abrupt end (the model card's "Silence
    after the window"). The silence's frames are read and dropped, so the output keeps the
    geometry's frame count, and a window that reaches the end of a file reads as offline does."""

    def __init__(self, encoder_shape: EncoderShape, head_shape: HeadShape, mel_filters: torch.Tensor,
                 mel_floor: float, silence_after: int = 0):
        super().__init__()
        self.encoder = WhisperEncoder(encoder_shape, LogMel(mel_filters, mel_floor))
        self.head = CTCHead(encoder_shape.d_model, head_shape)
        self.read_layer = head_shape.read_layer
        self.silence_after = silence_after

    @property
    def base_model(self) -> WhisperEncoder:
        """The part with ``feature_extractor``, named as in transformers' CTC models."""
        return self.encoder

    def forward(self, samples: torch.Tensor) -> CTCOutput:
        return CTCOutput(whisper_ctc_logits(self, samples))

    def features(self, samples: torch.Tensor) -> torch.Tensor:
        """The encoder's ``features``, as a method of the whole network for the exporter."""
        return self.encoder.features(samples)

    def from_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits of frames (batch, frames, d_model) whose conv features, positions added, are
        ``frames``: everything after the front end."""
        return self.head(self.encoder.attend(frames, self.read_layer)[0])


def followed_by_silence(net: WhisperCTC, samples: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """``feats`` (batch, frames, d_model), the conv features of ``samples``' frames, followed by
    those of the frames ``net.silence_after`` samples of silence after the last one's end make
    (samples past it, too few for a frame, are left out, as the geometry leaves them out)."""
    if not net.silence_after:
        return feats
    n = feats.shape[1]
    tail = samples[:, n * FRONT_END.jump:(n - 1) * FRONT_END.jump + FRONT_END.rf]
    return torch.cat([feats, net.features(F.pad(tail, (0, net.silence_after)))], 1)


def most_frames(net: WhisperCTC) -> int:
    """The most frames of input one pass takes: the positions left once the silence has its own."""
    return net.encoder.shape.max_positions - FRONT_END.frames(FRONT_END.rf - FRONT_END.jump + net.silence_after)


def whisper_ctc_logits(net: WhisperCTC, samples: torch.Tensor) -> torch.Tensor:
    """``net``'s logits (batch, frames, vocab) of ``samples`` (batch, samples), its silence read."""
    feats = net.features(samples)
    n = feats.shape[1]
    return net.from_features(net.encoder.with_positions(followed_by_silence(net, samples, feats), 0))[:, :n]


def folder_config(encoder: EncoderShape, head: HeadShape, mel_floor: float, **extra) -> dict:
    """``config.json`` of a model folder; ``extra`` records where the weights came from."""
    return {"model_type": MODEL_TYPE, "encoder": encoder.__dict__, "head": head.__dict__,
            "conv_kernel": list(CONV_KERNEL), "conv_stride": list(CONV_STRIDE), "sampling_rate": 16000,
            "mel_floor": mel_floor, "blank": BLANK, "word_delimiter": WORD_DELIMITER, **extra}


def shapes(config: dict) -> tuple[EncoderShape, HeadShape]:
    return EncoderShape(**config["encoder"]), HeadShape(**config["head"])


def read_encoder(path: Path) -> dict[str, torch.Tensor]:
    """An ``encoder.safetensors`` as ``WhisperEncoder``'s float32 state dict (mel filters included)."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(path).items()}
    state["feature_extractor.mel.filters"] = state.pop("mel_filters")
    return state


def load_whisper_ctc(folder: Path) -> tuple[WhisperCTC, dict]:
    """Build the model from a folder; strict key matching, so a missing or extra tensor fails."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    enc_shape, head_shape = shapes(config)
    encoder_state = read_encoder(folder / "encoder.safetensors")
    silence_after = round(float(config.get("silence_after_ms", 0)) * int(config["sampling_rate"]) / 1000)
    model = WhisperCTC(enc_shape, head_shape, encoder_state["feature_extractor.mel.filters"], float(config["mel_floor"]),
                       silence_after)
    state = {f"encoder.{k}": v for k, v in encoder_state.items()}
    trained = {k: v.float() for k, v in load_file(folder / "head.safetensors").items()}
    adapted = {k for k in trained if k.startswith("encoder.")}
    if adapted - state.keys():
        raise ValueError(f"head.safetensors adapts encoder tensors the encoder lacks: {sorted(adapted - state.keys())[:3]}")
    state.update({k if k in adapted else f"head.{k}": v for k, v in trained.items()})
    model.load_state_dict(state, strict=True)
    return model.eval(), config
