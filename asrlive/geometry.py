"""Receptive-field geometry of a strided conv front end, read from a model config or given lists.

For kernels k_i and strides s_i: RF_n = RF_{n-1} + (k_n - 1) * J_{n-1}, J_n = J_{n-1} * s_n,
RF_0 = 1, J_0 = 1 (in input samples). A window of N samples yields floor((N - RF) / J) + 1 frames
and frame f covers samples [f * J, f * J + RF). Valid (unpadded) convolutions are assumed, as in
wav2vec2's feature encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LayerField:
    """Receptive field after one layer."""

    index: int
    kernel: int
    stride: int
    rf_samples: int
    jump_samples: int
    sample_rate: int

    @property
    def rf_ms(self) -> float:
        return self.rf_samples * 1000.0 / self.sample_rate

    @property
    def rate_hz(self) -> float:
        return self.sample_rate / self.jump_samples

    @property
    def step_ms(self) -> float:
        return self.jump_samples * 1000.0 / self.sample_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.index, "kernel": self.kernel, "stride": self.stride,
            "rf_samples": self.rf_samples, "rf_ms": round(self.rf_ms, 4),
            "jump_samples": self.jump_samples, "rate_hz": round(self.rate_hz, 4),
            "step_ms": round(self.step_ms, 4),
        }


def layer_fields(kernels: list[int] | tuple[int, ...], strides: list[int] | tuple[int, ...],
                 sample_rate: int) -> list[LayerField]:
    if len(kernels) != len(strides) or not kernels:
        raise ValueError(f"need one stride per kernel, got {len(kernels)} kernels and {len(strides)} strides")
    if min(kernels) < 1 or min(strides) < 1:
        raise ValueError("kernels and strides must be positive integers")
    if sample_rate <= 0:
        raise ValueError("sample rate must be positive")
    fields, rf, jump = [], 1, 1
    for i, (k, s) in enumerate(zip(kernels, strides)):
        rf += (k - 1) * jump
        jump *= s
        fields.append(LayerField(i, k, s, rf, jump, sample_rate))
    return fields


def _pos_conv_span(config: Any) -> int | None:
    """Frames one frame reaches through the positional conv embedding, as one kernel's size.
    data2vec-audio stacks ``num_conv_pos_embeddings`` convs of ``conv_pos_kernel_size`` each;
    the wav2vec2 family has one conv of ``num_conv_pos_embeddings``."""
    n = getattr(config, "num_conv_pos_embeddings", None)
    per_layer = getattr(config, "conv_pos_kernel_size", None)
    if n is None or per_layer is None:
        return n
    return n * (per_layer - 1) + 1


@dataclass(frozen=True)
class Geometry:
    """Conv front-end geometry of a CTC model, plus what else limits locality."""

    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    sample_rate: int = 16000
    pos_conv_kernel: int | None = None
    feat_extract_norm: str | None = None
    do_normalize: bool | None = None

    @classmethod
    def from_config(cls, config: Any, sample_rate: int = 16000, do_normalize: bool | None = None) -> "Geometry":
        """From a transformers config with conv_kernel / conv_stride (wav2vec2, HuBERT, WavLM, data2vec-audio)."""
        try:
            kernels, strides = tuple(config.conv_kernel), tuple(config.conv_stride)
        except AttributeError as exc:
            raise ValueError(f"{type(config).__name__} has no conv_kernel/conv_stride: not a conv CTC front end") from exc
        return cls(
            kernels=kernels,
            strides=strides,
            sample_rate=sample_rate,
            pos_conv_kernel=_pos_conv_span(config),
            feat_extract_norm=getattr(config, "feat_extract_norm", None),
            do_normalize=do_normalize,
        )

    @property
    def layers(self) -> list[LayerField]:
        return layer_fields(self.kernels, self.strides, self.sample_rate)

    @property
    def rf(self) -> int:
        """Conv receptive field of one output frame, in samples."""
        return self.layers[-1].rf_samples

    @property
    def jump(self) -> int:
        """Frame step in samples."""
        return self.layers[-1].jump_samples

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.jump

    @property
    def frame_ms(self) -> float:
        return self.frame_seconds * 1000.0

    @property
    def frame_seconds(self) -> float:
        return self.jump / self.sample_rate

    @property
    def rf_with_pos_conv(self) -> int | None:
        """Samples a frame can see through the conv front end and the positional conv (no attention)."""
        if not self.pos_conv_kernel:
            return None
        return self.rf + (self.pos_conv_kernel - 1) * self.jump

    def frames(self, n_samples: int) -> int:
        """Frames the front end outputs for a window of ``n_samples``."""
        return 0 if n_samples < self.rf else (n_samples - self.rf) // self.jump + 1

    def frame_span(self, frame: int) -> tuple[int, int]:
        """Half-open sample span [start, end) seen by ``frame`` through the conv stack."""
        return frame * self.jump, frame * self.jump + self.rf

    def samples_for_frames(self, n_frames: int) -> int:
        """Fewest samples that yield ``n_frames`` frames."""
        return 0 if n_frames <= 0 else (n_frames - 1) * self.jump + self.rf

    def window_span(self, first_frame: int, end_frame: int) -> tuple[int, int]:
        """Samples [start, end) a window needs to compute frames [first_frame, end_frame)."""
        start = first_frame * self.jump
        return start, start + self.samples_for_frames(end_frame - first_frame)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "kernels": list(self.kernels),
            "strides": list(self.strides),
            "layers": [layer.as_dict() for layer in self.layers],
            "rf_samples": self.rf,
            "rf_ms": round(self.rf * 1000.0 / self.sample_rate, 4),
            "jump_samples": self.jump,
            "frame_ms": round(self.frame_ms, 4),
            "frame_rate_hz": round(self.frame_rate, 4),
            "pos_conv_kernel_frames": self.pos_conv_kernel,
            "rf_with_pos_conv_samples": self.rf_with_pos_conv,
            "feat_extract_norm": self.feat_extract_norm,
            "do_normalize": self.do_normalize,
        }


def format_table(fields: list[LayerField]) -> str:
    header = f"{'layer':>5} {'kernel':>6} {'stride':>6} {'RF (samples)':>12} {'RF (ms)':>9} {'jump':>6} {'rate (Hz)':>10} {'step (ms)':>9}"
    rows = [
        f"{f.index:>5} {f.kernel:>6} {f.stride:>6} {f.rf_samples:>12} {f.rf_ms:>9.2f} {f.jump_samples:>6} "
        f"{f.rate_hz:>10.0f} {f.step_ms:>9.3f}"
        for f in fields
    ]
    return "\n".join([header, *rows])
