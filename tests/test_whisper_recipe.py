"""The Whisper-encoder model's recipe: the voice split keeps a whole engine and some voices out of
training, corruption does what it says, cached features train the head and export a folder that
asrlive loads and that gives the same output as the model it was trained on."""

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"
sys.path.insert(0, str(MODELS))
import voices  # noqa: E402  (models/ is a folder of scripts, not a package)


def test_heldout_voices_and_engine_never_train():
    train = {v.label for v in voices.TRAIN_VOICES}
    heldout = {v.label for v in voices.HELDOUT_VOICES}
    assert not train & heldout
    assert voices.HELDOUT_ENGINE not in {v.engine for v in voices.TRAIN_VOICES}
    assert voices.HELDOUT_ENGINE not in voices.TRAIN_ENGINE_WEIGHTS
    rng = random.Random(0)
    drawn = {voices.pick_voice(rng, "train").label for _ in range(400)}
    assert not drawn & heldout and not any(d.startswith(voices.HELDOUT_ENGINE) for d in drawn)
    drawn_heldout = {voices.pick_voice(rng, "heldout").engine for _ in range(400)}
    assert voices.HELDOUT_ENGINE in drawn_heldout


def test_corruption_keeps_speech_in_range_and_changes_it():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clean = (0.5 * np.sin(2 * np.pi * 220 * t) * (t > 0.2)).astype(np.float32)
    outs = [voices.corrupt(clean, rng) for _ in range(20)]
    for out in outs:
        assert out.dtype == np.float32 and np.abs(out).max() <= 1.0
        assert clean.size < out.size < clean.size + 16000 + 16000 // 4 + 1
    peaks = [float(np.abs(o).max()) for o in outs]
    assert min(peaks) < 0.1 < max(peaks)  # levels from -30 to -1 dBFS


def test_room_impulse_decays():
    h = voices.room_impulse(np.random.default_rng(1))
    assert h[0] == 1.0
    quarter = h.size // 4
    assert np.sum(h[1:quarter] ** 2) > np.sum(h[-quarter:] ** 2)


def tiny_corpus_and_encoder(tmp_path):
    """A train and a held-out shard of two espeak-ng sentences each, and a tiny random encoder folder."""
    import json

    from asrlive.whisper_ctc_folder import read_config
    from tests.conftest import make_tiny_whisper_ctc

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng, sentences = random.Random(0), ["HELLO THERE", "GOOD MORNING TO YOU"]
    for split in ("train", "heldout"):
        audio = [voices.speak(voices.Voice("espeak", "en-us"), s, rng) for s in sentences]
        offsets = np.cumsum([0] + [a.size for a in audio])
        np.savez(corpus / f"{split}-0000.npz", audio=(np.concatenate(audio) * 32767).astype(np.int16),
                 offsets=offsets, texts=np.array(sentences), voices=np.array(["espeak:en-us"] * 2))
    encoder = make_tiny_whisper_ctc(tmp_path / "random")
    cfg = read_config(encoder)
    (encoder / "encoder.json").write_text(json.dumps({"whisper": "random", "encoder": cfg["encoder"]}))
    (encoder / "LICENSE-whisper.txt").write_text("test")
    return corpus, encoder


RECIPE_CTC = [sys.executable, str(MODELS / "train_whisper_ctc.py")]
RECIPE_DISTIL = [sys.executable, str(MODELS / "window_distil.py")]


def stage_one_steps(corpus, encoder, feats, run, layers: str) -> list[list]:
    """Commands caching ``layers`` of the tiny corpus and training a stage-1 head on layer 2: the
    teacher the window-distillation tests start from."""
    return [RECIPE_CTC + ["cache", "--corpus", corpus, "--encoder", encoder, "--layers", layers, "--feats", feats],
            RECIPE_CTC + ["train", "--feats", feats, "--run", run, "--read-layer", "2", "--head-layers", "1",
                          "--head-dim", "32", "--steps", "2", "--eval-every", "2", "--threads", "1"]]


@pytest.mark.skipif(not voices.have_engine("espeak"), reason="espeak-ng missing")
def test_cache_train_export_round_trip(tmp_path):
    """Two tiny shards through the recipe's three steps, on a tiny random encoder: the exported
    folder loads through asrlive and reproduces the head's own output on the cached features."""
    import torch

    from asrlive.model import load_model

    feats, run, out = (tmp_path / n for n in ("feats", "run", "model"))
    corpus, encoder = tiny_corpus_and_encoder(tmp_path)
    recipe = [sys.executable, str(MODELS / "train_whisper_ctc.py")]
    for args in (["cache", "--corpus", corpus, "--encoder", encoder, "--layers", "2", "--feats", feats],
                 ["train", "--feats", feats, "--run", run, "--read-layer", "2", "--head-layers", "1",
                  "--head-dim", "32", "--steps", "4", "--eval-every", "2", "--threads", "1"],
                 ["export", "--run", run, "--encoder", encoder, "--out", out]):
        done = subprocess.run(recipe + [str(a) for a in args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    model = load_model(out, device="cpu")
    assert model.geometry.rf == 1040 and len(model.vocab) == 32
    assert model.model.silence_after == 32000  # the shipped model's 2 s, unless the export is told otherwise
    # Resuming continues from the checkpoint instead of starting again.
    done = subprocess.run(recipe + ["train", "--feats", str(feats), "--run", str(run), "--read-layer", "2",
                                    "--head-layers", "1", "--head-dim", "32", "--steps", "6", "--eval-every", "2",
                                    "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert "resumed at step 4" in done.stdout, done.stdout + done.stderr
    # The cached features are what the loaded model computes inside, so the exported head gives
    # on them what the whole model gives on the audio (read as training read it: no silence after).
    model.model.silence_after = 0
    d = np.load(corpus / "heldout-0000.npz")
    x = torch.from_numpy(d["audio"][: d["offsets"][1]].astype(np.float32) / 32767)
    with torch.inference_mode():
        hidden = torch.from_numpy(np.load(feats / "heldout-0000.L2.npy")[: model.geometry.frames(x.numel())].astype(np.float32))
        from_cache = model.model.head(hidden[None]).log_softmax(-1)[0].numpy()
    np.testing.assert_allclose(model.log_probs(x.numpy()), from_cache, atol=2e-2)


@pytest.mark.parametrize("damage", ["no head", "extra tensor", "adapts a missing layer", "bad vocab", "bad config"])
def test_broken_whisper_ctc_folders_fail_in_one_line(tmp_path, damage):
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from asrlive.model import ModelLoadError, load_geometry, load_model
    from tests.conftest import make_tiny_whisper_ctc

    folder = make_tiny_whisper_ctc(tmp_path / "m")
    if damage == "no head":
        (folder / "head.safetensors").unlink()
    elif damage == "extra tensor":
        state = load_file(folder / "head.safetensors")
        save_file({**state, "stray": state["lm_head.bias"].clone()}, str(folder / "head.safetensors"))
    elif damage == "adapts a missing layer":
        state = load_file(folder / "head.safetensors")
        save_file({**state, "encoder.blocks.9.q.bias": state["lm_head.bias"].clone()}, str(folder / "head.safetensors"))
    elif damage == "bad vocab":
        (folder / "vocab.json").write_text(json.dumps({"<pad>": 0, "A": 1}))
    else:
        cfg = json.loads((folder / "config.json").read_text())
        del cfg["conv_kernel"]
        (folder / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ModelLoadError):
            load_geometry(folder)
    with pytest.raises(ModelLoadError) as err:
        load_model(folder, device="cpu")
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
    shutil.rmtree(folder)


def test_training_texts_hold_no_realspeech_sentence():
    """Several training voices were built from CMU ARCTIC recordings, whose prompts (like the other
    real recordings' texts) are in the evaluation set: no sentence of more than two words may be
    spoken in training. (One-word sentences such as 'SIX' are in both.)"""
    import csv

    from asrlive.textcorpus import load_sentences, normalise
    from tests.conftest import SHARED

    manifest = SHARED / "realspeech" / "manifest.tsv"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not here")
    refs = {normalise(r["transcript"]) for r in csv.DictReader(manifest.open(), delimiter="\t")}
    train = set(load_sentences("train", max_words=16))
    assert not {r for r in refs if len(r.split()) > 2} & train
    assert not any(r in s for r in refs if len(r.split()) > 2 for s in train)
    # Nor in the word language model's text (the same sentences, longer ones too, and a word list).
    from models.build_lm import training_text

    lm_text = training_text()
    assert not any(r in line for r in refs if len(r.split()) > 2 for line in lm_text)


@pytest.mark.parametrize("kind,layers", [("lstm", 2), ("lstm", 0), ("transformer", 1)])
def test_head_on_a_padded_batch_equals_the_head_on_each_window(kind, layers):
    """Training pads batches; inference sees one unpadded window. Padding must change nothing,
    including in the LSTM's backward direction."""
    import torch

    from asrlive.whisper_ctc import CTCHead, HeadShape

    torch.manual_seed(0)
    head = CTCHead(24, HeadShape(read_layer=1, d_model=16, layers=layers, heads=2, vocab_size=32, kind=kind)).eval()
    x = torch.randn(3, 40, 24)
    pad = torch.zeros(3, 40, dtype=torch.bool)
    pad[1, 25:] = True
    pad[2, 7:] = True
    with torch.no_grad():
        batch = head(x, pad)
        for i, n in enumerate((40, 25, 7)):
            torch.testing.assert_close(batch[i, :n], head(x[i:i + 1, :n])[0], atol=1e-5, rtol=1e-5)


def test_the_whisper_model_in_the_repository_loads_and_streams_frame_exact(spoken_sentence):
    """models/asrlive-whisper-base-ctc (not the default yet) through the same core as any model."""
    from asrlive.model import load_model
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import offline_samples, stream_samples

    model = load_model(MODELS / "asrlive-whisper-base-ctc", device="cpu")
    assert (model.geometry.rf, model.geometry.jump) == (1040, 320)
    audio, _ = spoken_sentence
    offline = offline_samples(model, audio)
    streamed = stream_samples(model, audio, ChunkPlan.from_settings(model.geometry, ChunkSettings(500, 4000, 4000)))
    assert streamed.n_frames == offline.n_frames == model.geometry.frames(audio.size)
    np.testing.assert_allclose(streamed.log_probs, offline.log_probs, atol=1e-4)
    assert offline.text.strip()


@pytest.mark.skipif(not voices.have_engine("espeak"), reason="espeak-ng missing")
def test_window_distillation_caches_planner_windows_and_exports(tmp_path):
    """The window cache holds, for every utterance, the planner's windows (each frame committed
    once) with the encoder's output on exactly that window's samples; distillation from a trained
    head runs, resumes and exports a folder that loads, and that folder can teach a new run."""
    import json

    import torch

    from asrlive.model import load_model
    from asrlive.whisper_ctc import load_whisper_ctc

    corpus, encoder = tiny_corpus_and_encoder(tmp_path)
    feats, wfeats, run, student, out = (tmp_path / n for n in ("feats", "wfeats", "run", "student", "model"))
    ctc, distil = RECIPE_CTC, RECIPE_DISTIL
    steps = stage_one_steps(corpus, encoder, feats, run, "2")
    for plan in ("1000/4000/500", "320/4000/320"):
        steps.append(distil + ["cache", "--corpus", corpus, "--encoder", encoder, "--feats", wfeats,
                               "--shards", "heldout-0000", "--plan", plan, "--layer", "2"])
    steps += [distil + ["cache", "--corpus", corpus, "--encoder", encoder, "--feats", wfeats,
                        "--shards", "train-0000", "--layer", "2"],
              distil + ["train", "--feats", feats, "--window-feats", wfeats, "--teacher", run / "best.pt",
                        "--run", student, "--steps", "2", "--eval-every", "1", "--threads", "1"],
              ctc + ["export", "--run", student, "--encoder", encoder, "--out", out]]
    for cmd in steps:
        done = subprocess.run([str(a) for a in cmd], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    d = np.load(corpus / "heldout-0000.npz")
    meta = json.loads((wfeats / "heldout-0000.320-4000-320.json").read_text())
    cached = np.load(wfeats / "heldout-0000.320-4000-320.L2.npy")
    model, _ = load_whisper_ctc(encoder)
    start = 0
    for u in range(2):
        x = d["audio"][d["offsets"][u]:d["offsets"][u + 1]].astype(np.float32) / 32767
        wins = [w for w in meta["windows"] if w[0] == u]
        total = (len(x) - 1040) // 320 + 1
        assert [c for w in wins for c in range(w[2], w[3])] == list(range(total))  # every frame once
        for _, first, _, _, end, *_ in wins:
            with torch.inference_mode():
                h = model.encoder.hidden(torch.from_numpy(x[first * 320:(end - first - 1) * 320 + 1040 + first * 320])[None], 2)[0]
            np.testing.assert_allclose(cached[start:start + end - first].astype(np.float32), h.numpy(), atol=2e-2)
            start += end - first
    assert load_model(out, device="cpu").geometry.rf == 1040
    config = json.loads((out / "config.json").read_text())
    assert config["trained"]["distilled_from_step"] == 2 and "hop320" in config["trained"]["heldout"]
    done = subprocess.run([str(a) for a in steps[-2][:-6]] + ["--steps", "3", "--eval-every", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert "resumed at step 2" in done.stdout, done.stdout + done.stderr
    again = tmp_path / "again"
    done = subprocess.run([str(a) for a in steps[-2][:-10]] + ["--teacher", out, "--run", again, "--steps", "1",
                                                              "--eval-every", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((again / "head.json").read_text())["distilled_from_step"] == config["trained"]["step"]


def test_position_probe_streams_as_the_app_does(spoken_sentence):
    """The probe's window-position streaming is the app's own (same text as the worker's path), and
    stream positions change nothing where every window starts at the stream's start."""
    from asrlive.model import load_model
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import stream_samples
    from asrlive.decoding import GREEDY
    from asrlive.whisper_ctc import load_whisper_ctc
    from position_probe import stream_text

    folder = MODELS / "asrlive-whisper-base-ctc"
    model = load_model(folder, device="cpu")
    net, _ = load_whisper_ctc(folder)
    audio, _ = spoken_sentence
    short = ChunkPlan.from_settings(model.geometry, ChunkSettings(320, 640, 320))
    app = stream_samples(model, audio, short, decoder=GREEDY).text
    assert stream_text(net, model.geometry, audio, short, stream_positions=False) == app
    whole = ChunkPlan.from_settings(model.geometry, ChunkSettings(320, 20000, 320))  # left context past the 2 s sentence
    assert (stream_text(net, model.geometry, audio, whole, stream_positions=True)
            == stream_text(net, model.geometry, audio, whole, stream_positions=False))


def test_window_distillation_adapting_the_encoders_top_layer_exports_a_model_that_uses_it(tmp_path):
    """With ``--adapt-layers 1`` the student reads the layer below the head's and trains the top
    layer with the head; the exported folder carries that layer and the loaded model computes,
    from audio, what the student computes from the cached features."""
    import torch

    from asrlive.model import load_model
    from asrlive.whisper_ctc import load_whisper_ctc

    corpus, encoder = tiny_corpus_and_encoder(tmp_path)
    feats, wfeats, run, student, out = (tmp_path / n for n in ("feats", "wfeats", "run", "student", "model"))
    ctc, distil = RECIPE_CTC, RECIPE_DISTIL
    steps = stage_one_steps(corpus, encoder, feats, run, "1,2")
    for plan in ("1000/4000/500", "320/4000/320", "random"):
        steps.append(distil + ["cache", "--corpus", corpus, "--encoder", encoder, "--feats", wfeats,
                               "--shards", "heldout-0000" if plan != "random" else "train-0000", "--plan", plan,
                               "--layer", "1"])
    steps += [distil + ["train", "--feats", feats, "--window-feats", wfeats, "--teacher", run / "best.pt",
                        "--run", student, "--adapt-layers", "1", "--encoder", encoder, "--lr", "1e-2",
                        "--steps", "3", "--eval-every", "1", "--threads", "1"],
              ctc + ["export", "--run", student, "--encoder", encoder, "--out", out]]
    for cmd in steps:
        done = subprocess.run([str(a) for a in cmd], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    original, _ = load_whisper_ctc(encoder)
    adapted, config = load_whisper_ctc(out)
    assert not torch.equal(original.encoder.blocks[1].fc1.weight, adapted.encoder.blocks[1].fc1.weight)
    assert torch.equal(original.encoder.blocks[0].fc1.weight, adapted.encoder.blocks[0].fc1.weight)
    best = torch.load(student / "best.pt", weights_only=False)
    assert set(best["encoder_top"]) == {k for k in original.encoder.state_dict() if k.startswith(("blocks.1.", "ln_post."))}
    d = np.load(corpus / "heldout-0000.npz")
    x = d["audio"][: d["offsets"][1]].astype(np.float32) / 32767
    layer1 = torch.from_numpy(np.load(feats / "heldout-0000.L1.npy")[: (len(x) - 1040) // 320 + 1].astype(np.float32))
    sys.path.insert(0, str(MODELS))
    from window_distil import Student  # noqa: E402

    from asrlive.whisper_ctc import CTCHead, HeadShape

    twin = Student(CTCHead(original.encoder.shape.d_model, HeadShape(**config["head"])), original.encoder, 1)
    twin.load_state_dict({**{f"head.{k}": v for k, v in best["head"].items()},
                          **{k.replace("blocks.1.", "blocks.0."): v for k, v in best["encoder_top"].items()}})
    with torch.inference_mode():
        from_cache = twin(layer1[None]).log_softmax(-1)[0].numpy()
    exported = load_model(out, device="cpu")
    exported.model.silence_after = 0  # read as the cache was made: no silence after the utterance
    np.testing.assert_allclose(exported.log_probs(x), from_cache, atol=3e-2)
