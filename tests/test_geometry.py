"""Receptive-field numbers, checked against hand-derived values and the seed RF tables."""

import json

import pytest

from asrlive.cli import main
from asrlive.geometry import Geometry, layer_fields

# (kernels, strides, expected RF per layer, expected output rate per layer in Hz) computed from
# RF_n = RF_{n-1} + (k_n - 1) J_{n-1}; these are the configurations of the seed notebook 000.
# Its printed table for kernels 12,4,2,2,3,4 disagrees with its own inputs (it shows the output
# of kernels 8,4,...); the numbers below follow the inputs.
SEED_TABLES = [
    ([400, 3, 3], [160, 1, 2], [400, 720, 1040], [100, 100, 50]),
    ([400, 5, 5], [160, 2, 2], [400, 1040, 2320], [100, 50, 25]),
    ([10, 8, 4, 4, 4, 1, 1], [5, 4, 2, 2, 2, 1, 1], [10, 45, 105, 225, 465, 465, 465], [3200, 800, 400, 200, 100, 100, 100]),
    ([10, 3, 3, 3, 3, 2, 2, 128], [5, 2, 2, 2, 2, 2, 2, 1],
     [10, 20, 40, 80, 160, 240, 400, 41040], [3200, 1600, 800, 400, 200, 100, 50, 50]),
    ([12, 4, 2, 2, 3, 4], [5, 3, 2, 1, 1, 1], [12, 27, 42, 72, 132, 222], [3200, 1067, 533, 533, 533, 533]),
    ([8, 8, 2, 2, 3, 7], [5, 3, 2, 1, 1, 1], [8, 43, 58, 88, 148, 328], [3200, 1067, 533, 533, 533, 533]),
    ([5, 3, 2], [2, 2, 1], [5, 9, 13], [8000, 4000, 4000]),
    ([320, 11, 11, 11, 11, 13, 13, 13, 17, 17, 17, 21, 21, 21, 25, 25, 25], [160, 2] + [1] * 15,
     [320, 1920, 5120, 8320, 11520, 15360, 19200, 23040, 28160, 33280, 38400, 44800, 51200, 57600,
      65280, 72960, 80640], [100] + [50] * 16),
    ([31, 3, 3, 3, 3, 3, 3, 3, 7, 7, 7, 7, 31], [20, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1],
     [31, 71, 151, 311, 631, 1271, 1911, 2551, 4471, 6391, 8311, 10231, 19831], [800, 400, 200, 100] + [50] * 9),
    ([320, 11, 11], [160, 2, 1], [320, 1920, 5120], [100, 50, 50]),
]


@pytest.mark.parametrize("kernels,strides,rfs,rates", SEED_TABLES)
def test_layer_fields_match_seed_tables(kernels, strides, rfs, rates):
    fields = layer_fields(kernels, strides, 16000)
    assert [f.rf_samples for f in fields] == rfs
    assert [round(f.rate_hz) for f in fields] == rates


def test_wav2vec2_geometry():
    g = Geometry((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2), 16000, pos_conv_kernel=128)
    assert (g.rf, g.jump, g.frame_ms) == (400, 320, 20.0)
    assert g.rf_with_pos_conv == 400 + 127 * 320
    assert g.frames(399) == 0 and g.frames(400) == 1 and g.frames(719) == 1 and g.frames(720) == 2
    assert g.frames(16000) == 49
    assert g.frame_span(3) == (960, 1360)
    for n in range(1, 60):
        assert g.frames(g.samples_for_frames(n)) == n
        assert g.frames(g.samples_for_frames(n) - 1) == n - 1


def test_frames_equal_iterated_conv_output_lengths():
    """The closed form equals applying floor((L - k) / s) + 1 layer by layer (what the model does)."""
    g = Geometry((12, 4, 2, 2, 3, 4), (5, 3, 2, 1, 1, 1))
    for n in range(0, 3000, 7):
        length = n
        for k, s in zip(g.kernels, g.strides):
            length = (length - k) // s + 1 if length >= k else 0
        assert g.frames(n) == length


def test_geometry_from_model_config(tiny_model):
    g = tiny_model.geometry
    assert (g.rf, g.jump, g.sample_rate, g.pos_conv_kernel, g.feat_extract_norm) == (400, 320, 16000, 16, "layer")


def test_rf_cli_json_and_table(capsys):
    assert main(["rf", "--kernels", "10,3,3,3,3,2,2", "--strides", "5,2,2,2,2,2,2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["rf_samples"] == 400 and record["jump_samples"] == 320
    assert [layer["rf_samples"] for layer in record["layers"]] == [10, 20, 40, 80, 160, 240, 400]
    assert main(["rf", "--kernels", "5,3,2", "--strides", "2,2,1", "--fs", "8000"]) == 0
    out = capsys.readouterr().out
    assert "13" in out.splitlines()[-2] and "1.62" in out


def test_rf_cli_model(capsys, tiny_model_dir):
    assert main(["rf", "--model", str(tiny_model_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pos_conv_kernel_frames"] == 16


@pytest.mark.parametrize("argv", [
    ["rf", "--kernels", "10,3", "--strides", "5"],
    ["rf", "--kernels", "10,3"],
    ["rf", "--kernels", "10,x", "--strides", "5,2"],
    ["rf", "--kernels", "10,0", "--strides", "5,2"],
])
def test_rf_cli_rejects_bad_lists(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_data2vec_positional_convs_reach_through_every_layer():
    """data2vec-audio's num_conv_pos_embeddings counts convs (5 of kernel 19), not a kernel."""
    from transformers import Data2VecAudioConfig, Wav2Vec2Config

    g = Geometry.from_config(Data2VecAudioConfig())
    assert g.pos_conv_kernel == 5 * 18 + 1 and g.rf_with_pos_conv == 400 + 5 * 18 * 320
    assert Geometry.from_config(Wav2Vec2Config()).pos_conv_kernel == 128
