"""Audio files in (rates, channels, bad input) and the transcribe CLI end to end."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

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


def test_unreadable_file_is_reported_before_the_model_loads(tmp_path, monkeypatch, capsys):
    wav = tmp_path / "locked.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    # Tests may run as root, who reads any file: stand in for chmod 000.
    monkeypatch.setattr("asrlive.audio.files.os.access", lambda path, mode: False)
    code = main(["transcribe", "--model", str(tmp_path / "no-such-model"), str(wav)])
    assert code == 3 and capsys.readouterr().err == f"asrlive: error: {wav}: not readable (permission denied)\n"


def test_bad_file_among_good_ones_keeps_the_good_output(tmp_path, tiny_model_dir, sentence_files, capsys):
    paths, _ = sentence_files
    out = tmp_path / "out"
    code = main(["transcribe", "--model", str(tiny_model_dir), "--format", "json", "-o", str(out),
                 str(paths[16000]), str(tmp_path / "missing.wav"), str(paths[48000])])
    assert code == 3
    assert sorted(p.name for p in out.iterdir()) == ["s16000.json", "s48000.json"]


def _noise(seconds: float) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(round(seconds * 16000)) * 0.1).astype(np.float32)


def test_truncated_wav_keeps_its_text_warns_and_exits_3(tmp_path, tiny_model_dir, capsys):
    wav = tmp_path / "speech.wav"
    sf.write(wav, _noise(2.91), 16000, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[:44 + 7200 * 2])  # the header still says 2.91 s; 0.45 s remain
    out = tmp_path / "speech.json"
    code = main(["transcribe", "--model", str(tiny_model_dir), "--format", "json", "-o", str(out), str(wav)])
    assert code == 3
    assert capsys.readouterr().err == (f"asrlive: warning: {wav}: truncated: header says 2.91 s, 0.45 s present; "
                                       "transcribed what is there\n")
    assert json.loads(out.read_text())["duration_s"] == 0.45


@pytest.mark.parametrize("mode", [[], ["--offline"]])
def test_flac_cut_short_keeps_the_text_before_the_break_and_exits_3(tmp_path, tiny_model_dir, capsys, mode):
    flac = tmp_path / "speech.flac"
    sf.write(flac, _noise(4.0), 16000)
    flac.write_bytes(flac.read_bytes()[:flac.stat().st_size // 2])  # decodes until the data stops
    out = tmp_path / "speech.json"
    code = main(["transcribe", "--model", str(tiny_model_dir), "--format", "json", "-o", str(out), *mode, str(flac)])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith(f"asrlive: warning: {flac}: truncated or corrupt audio") and err.count("\n") == 1
    assert 0.5 < json.loads(out.read_text())["duration_s"] < 4.0


@pytest.mark.parametrize("seconds,warning", [
    (0.1, "only 0.10 s of audio (under 0.25 s): too short for a reliable transcript"),
    (0.01, "0.01 s of audio is shorter than the model's receptive field: no frames, no text"),
])
def test_very_short_audio_is_transcribed_with_a_warning(tmp_path, tiny_model_dir, capsys, seconds, warning):
    wav = tmp_path / "short.wav"
    sf.write(wav, _noise(seconds), 16000)
    assert main(["transcribe", "--model", str(tiny_model_dir), str(wav)]) == 0
    assert capsys.readouterr().err == f"asrlive: warning: {wav}: {warning}\n"


def test_txt_lines_name_their_file_when_there_are_several(tiny_model_dir, sentence_files, capsys):
    paths, _ = sentence_files
    one, two = str(paths[16000]), str(paths[48000])
    alone = []
    for p in (one, two):
        assert main(["transcribe", "--model", str(tiny_model_dir), p]) == 0
        alone.append(capsys.readouterr().out)
    assert main(["transcribe", "--model", str(tiny_model_dir), one, two]) == 0
    assert capsys.readouterr().out == f"{one}: {alone[0]}{two}: {alone[1]}"
    assert not alone[0].startswith(one)  # one file: the text alone, as before


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
    capsys.readouterr()  # saving a model may draw a progress bar; only main()'s output counts
    cases = [(not_model, "no config.json"), (no_vocab, "vocabulary"),
             ("nobody/no-such-model-xyz", "hub"), (wav, "not a file")]
    for model, words in cases:
        code = main(["transcribe", "--model", str(model), str(wav)])
        err = capsys.readouterr().err.strip()
        assert code == 4, err
        assert len(err.splitlines()) == 1 and words in err, err
    # Options that cannot go together are refused in one line, before the model loads.
    code = main(["transcribe", "--model", str(tiny_model_dir), "--device", "cuda", "--precision", "int8", str(wav)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--precision int8 runs on the CPU only" in err, err
    code = main(["transcribe", "--reuse", "states", "--backend", "onnxruntime", str(wav)])  # the embedded model
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--reuse states runs the encoder on torch" in err, err


# Runs main() in a fresh interpreter and reports which heavy modules it imported: an import is
# what costs seconds, so this checks the speed of the early errors without timing anything.
HEAVY_IMPORTS_PROBE = """
import sys
from asrlive.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:  # --help
    code = exc.code
print(code, sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


@pytest.mark.parametrize("argv,code", [
    (["--help"], 0),
    (["transcribe", "nope.wav"], 3),
    (["transcribe", "--chunk-ms", "-5", "x.wav"], 2),
    (["transcribe", "--device", "gpu", "x.wav"], 2),
    (["live", "--left-ms", "-1"], 2),
    (["transcribe", "--model", "nobody/no-such-model-xyz", "x.wav"], 4),  # not cached, HF_HUB_OFFLINE set
    (["transcribe", "--decoder", "greedy", "--lm", "x.arpa", "x.wav"], 2),  # an LM needs beam search
    (["transcribe", "--decoder", "beam", "--lm", "missing.arpa", "x.wav"], 3),
    (["live", "--decoder", "beam", "--lm", "x.wav"], 3),  # not an ARPA file
    (["transcribe", "--chunk-ms", "nan", "x.wav"], 2),
    (["transcribe", "--left-ms", "28000", "--right-ms", "2000", "x.wav"], 2),  # a window past 30 s
    (["transcribe", "x.wav", "-o", "no-such-folder/x.txt"], 2),
    (["transcribe", "--model", ".", "x.wav"], 4),  # a folder without config.json
    (["live", "--seconds", "0"], 2),
    (["bench", "--synth", "100000"], 2),
    (["rf", "--empirical", "--audio", "nope.wav"], 3),
    (["gui", "--file", "nope.wav"], 3),
    (["transcribe", "x.wav", "-o", "out.npz", "--emissions", "out.npz"], 2),
])
def test_argument_and_file_errors_come_before_torch(tmp_path, argv, code):
    sf.write(tmp_path / "x.wav", np.zeros(8000, np.float32), 16000)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", HEAVY_IMPORTS_PROBE.format(argv=argv)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == f"{code} []", done.stderr


def _env_with_repo(**changes: str | None) -> dict[str, str]:
    """This environment with the checkout first on the path, and ``changes`` (None removes)."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    for key, value in changes.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    return env


def test_uncached_hub_id_without_network_fails_in_one_line(tmp_path):
    """Networking on, nothing listening where the hub should be: one error line, exit 4, and
    none of huggingface_hub's retries (each one a "Retrying" line and seconds of waiting)."""
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = _env_with_repo(HF_HUB_OFFLINE=None, TRANSFORMERS_OFFLINE=None, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"),
                             HTTP_PROXY=None, HTTPS_PROXY=None, http_proxy=None, https_proxy=None)
        done = subprocess.run([sys.executable, "-m", "asrlive", "transcribe", "--model", "nobody/no-such-model-xyz",
                               str(wav)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stderr
    assert done.stderr == (f"asrlive: error: nobody/no-such-model-xyz: not in the local Hugging Face cache, "
                           f"and the hub ({endpoint}) cannot be reached\n")


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["transcribe", "--chunk-ms", "abc", "x.wav"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("asrlive: error: argument --chunk-ms") and "--help" in err


def test_outputs_that_would_overwrite_an_input_or_each_other_are_refused_first(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "same.wav", np.zeros(8000, np.float32), 16000)
    wav = tmp_path / "a" / "same.wav"
    before = wav.read_bytes()
    no_model = str(tmp_path / "no-model")  # reached only if the checks let it through (exit 4)
    assert main(["transcribe", "--model", no_model, str(wav), "-o", str(wav)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err and wav.read_bytes() == before
    code = main(["transcribe", "--model", no_model, str(wav), str(tmp_path / "b" / "same.wav"), "-o", str(tmp_path / "out")])
    assert code == 2 and "would both write" in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())


def test_transcript_that_cannot_be_written_goes_to_stdout(tmp_path, tiny_model_dir, sentence_files, monkeypatch, capsys):
    paths, _ = sentence_files

    def disk_full(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("asrlive.export.write_atomic", disk_full)
    code = main(["transcribe", "--model", str(tiny_model_dir), "--decoder", "greedy", str(paths[16000]),
                 "-o", str(tmp_path / "t.txt")])
    out, err = capsys.readouterr()
    assert code == 3 and "No space left on device" in err and "follows on stdout" in err
    assert len(out.strip()) > 10


@pytest.mark.skipif(sys.platform != "linux", reason="names that are not UTF-8 exist on Linux file systems")
def test_file_name_that_is_not_utf8_is_read(tmp_path):
    from asrlive.audio.files import file_info, read_file

    path = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff\xfename.wav"))
    sf.write(os.fsencode(path), np.zeros(1600, np.float32), 16000)
    assert file_info(path) == (16000, 1, 0.1) and len(read_file(path, 16000)) == 1600


def test_rf_analysis_refuses_audio_longer_than_one_pass(tmp_path, capsys):
    from tests.conftest import make_tiny_whisper_ctc

    folder = make_tiny_whisper_ctc(tmp_path / "model")
    long_wav = tmp_path / "long.wav"
    sf.write(long_wav, _noise(31.0), 16000)
    capsys.readouterr()
    assert main(["rf", "--empirical", "--model", str(folder), "--audio", str(long_wav)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audio too long for analysis" in err


def test_emissions_that_cannot_be_written_leave_the_transcript_and_no_temp_file(
        tmp_path, tiny_model_dir, sentence_files, monkeypatch, capsys):
    paths, _ = sentence_files

    def disk_full(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("numpy.savez_compressed", disk_full)
    code = main(["transcribe", "--model", str(tiny_model_dir), "--decoder", "greedy", str(paths[16000]),
                 "-o", str(tmp_path / "t.txt"), "--emissions", str(tmp_path / "e.npz")])
    out, err = capsys.readouterr()
    assert code == 3 and "cannot write" in err and "e.npz" in err and out == ""
    assert (tmp_path / "t.txt").read_text().strip() and sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
