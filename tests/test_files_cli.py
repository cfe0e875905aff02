"""Audio files in (rates, channels, bad input) and the transcribe CLI end to end."""

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from asrlive.audio.files import read_file
from asrlive.cli import main
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import stream_file


@pytest.fixture(scope="module")
def sentence_files(tmp_path_factory, spoken_sentence):
    audio, text = spoken_sentence
    folder = tmp_path_factory.mktemp("rates")
    paths = {}
    for rate in (16000, 8000, 22050, 44100, 48000):
        resampled = audio if rate == 16000 else soxr.resample(audio, 16000, rate, quality="VHQ")
        paths[rate] = folder / f"s{rate}.wav"
        sf.write(paths[rate], resampled, rate, subtype="PCM_16")
    stereo = soxr.resample(audio, 16000, 44100, quality="VHQ")
    paths["stereo"] = folder / "stereo.flac"
    sf.write(paths["stereo"], np.stack([stereo, stereo * 0.5], axis=1), 44100)
    paths["ogg"] = folder / "s.ogg"
    sf.write(paths["ogg"], audio, 16000, format="OGG", subtype="VORBIS")
    paths["mp3"] = folder / "s.mp3"
    sf.write(paths["mp3"], np.stack([stereo, stereo], axis=1), 44100, format="MP3", subtype="MPEG_LAYER_III")
    return paths, text


def test_read_file_resamples_and_mixes(sentence_files):
    paths, _ = sentence_files
    ref = read_file(paths[16000], 16000)
    for key in (22050, 44100, 48000, "stereo"):
        x = read_file(paths[key], 16000)
        assert abs(len(x) - len(ref)) <= 2
    stereo = read_file(paths["stereo"], 16000)
    # The mix of a full and a half-level copy is 0.75 of the signal.
    n = min(len(stereo), len(ref))
    assert np.corrcoef(stereo[:n], ref[:n])[0, 1] > 0.99


def test_read_file_decodes_mp3(sentence_files):
    """MP3 through libsndfile (1.1 and later, as bundled with soundfile's wheels): the decoder trims
    the encoder's delay, so the audio lines up with the WAV it was made from."""
    paths, _ = sentence_files
    ref = read_file(paths[16000], 16000)
    mp3 = read_file(paths["mp3"], 16000)
    assert abs(len(mp3) - len(ref)) <= 2
    n = min(len(mp3), len(ref))
    assert np.corrcoef(mp3[:n], ref[:n])[0, 1] > 0.95


@pytest.mark.parametrize("key", [8000, 22050, 44100, 48000, "stereo", "ogg", "mp3"])
def test_other_rates_and_channels_keep_frames_aligned(tiny_model, sentence_files, key):
    paths, _ = sentence_files
    plan = ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(500, 1000, 300))
    ref = stream_file(tiny_model, paths[16000], plan)
    other = stream_file(tiny_model, paths[key], plan)
    assert abs(other.n_frames - ref.n_frames) <= 1


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage garbage garbage")
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 20)
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(16000, np.float32), 16000)
    truncated = tmp_path / "truncated.flac"
    sf.write(truncated, (np.random.default_rng(0).standard_normal(48000) * 0.1).astype(np.float32), 16000)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    nan = tmp_path / "nan.wav"
    sig = np.zeros(16000, np.float32)
    sig[100] = np.nan
    sf.write(nan, sig, 16000, subtype="FLOAT")
    zero_len = tmp_path / "zero.wav"
    sf.write(zero_len, np.zeros(0, np.float32), 16000)
    return {"missing": tmp_path / "nope.wav", "empty": empty, "corrupt": corrupt, "text": text,
            "folder": tmp_path, "nan": nan, "zero": zero_len, "truncated": truncated}


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "text", "folder", "nan", "zero", "truncated"])
def test_bad_files_give_one_line_errors(tmp_path, tiny_model_dir, capsys, kind):
    path = _bad_files(tmp_path)[kind]
    code = main(["transcribe", "--model", str(tiny_model_dir), str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert len(err.splitlines()) == 1 and err.startswith("asrlive: error:") and str(path) in err


def test_bad_file_among_good_ones_keeps_the_good_output(tmp_path, tiny_model_dir, sentence_files, capsys):
    paths, _ = sentence_files
    out = tmp_path / "out"
    code = main(["transcribe", "--model", str(tiny_model_dir), "--format", "json", "-o", str(out),
                 str(paths[16000]), str(tmp_path / "missing.wav"), str(paths[48000])])
    assert code == 3
    assert sorted(p.name for p in out.iterdir()) == ["s16000.json", "s48000.json"]


def test_cli_json_srt_vtt_and_emissions(tmp_path, tiny_model_dir, tiny_model, sentence_files, capsys):
    paths, _ = sentence_files
    wav = paths[16000]
    assert main(["transcribe", "--model", str(tiny_model_dir), "--format", "json", "--chunk-ms", "330",
                 "--left-ms", "500", "--right-ms", "90", "--emissions", str(tmp_path / "e.npz"), str(wav)]) == 0
    record = json.loads(capsys.readouterr().out)
    n = tiny_model.geometry.frames(len(read_file(wav, 16000)))
    assert record["frames"] == n and record["path"] == str(wav) and record["mode"] == "streaming"
    assert record["settings"]["hop_frames"] == 16 and record["settings"]["right_frames"] == 4
    assert set(record["timing"]) >= {"windows", "compute_p50_ms", "compute_p95_ms", "real_time_factor"}
    for w in record["words"]:
        assert set(w) == {"word", "start", "end", "confidence"} and w["start"] < w["end"]
    saved = np.load(tmp_path / "e.npz")
    assert saved["log_probs"].shape == (n, 32) and saved["jump_samples"] == 320
    for fmt, head in (("srt", None), ("vtt", "WEBVTT")):
        out = tmp_path / f"t.{fmt}"
        assert main(["transcribe", "--model", str(tiny_model_dir), "--format", fmt, "-o", str(out), str(wav)]) == 0
        if head:
            assert out.read_text().startswith(head)


def test_cli_model_errors(tmp_path, capsys, tiny_model_dir):
    from tests.conftest import make_tiny_model

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    not_model = tmp_path / "empty_folder"
    not_model.mkdir()
    no_vocab = make_tiny_model(tmp_path / "novocab", with_vocab=False)
    cases = [(not_model, "no config.json"), (no_vocab, "vocabulary"),
             ("nobody/no-such-model-xyz", "hub"), (wav, "not a file")]
    for model, words in cases:
        code = main(["transcribe", "--model", str(model), str(wav)])
        err = capsys.readouterr().err.strip()
        assert code == 4, err
        assert len(err.splitlines()) == 1 and words in err
