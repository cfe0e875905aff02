"""The shipped model, end to end: held-out speech through the CLI, and the same text whatever the
file's rate and channel count."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr

from asrlive.metrics import cer
from asrlive.synth import random_voice, synthesize
from asrlive.textcorpus import load_sentences

# The interim model measures 24.9 % on 200 held-out utterances (models/README.md) and 20.6 % on
# these six; tighten this as it trains.
HELDOUT_CER_LIMIT = 0.35


def test_cli_transcribes_heldout_speech(tmp_path, embedded_model):
    rng = random.Random(99)
    sentences = rng.sample(load_sentences("heldout", min_words=4, max_words=10), 6)
    paths = []
    for i, s in enumerate(sentences):
        paths.append(tmp_path / f"h{i}.wav")
        sf.write(paths[-1], synthesize(s, random_voice(rng, "heldout")), 16000)
    done = subprocess.run([sys.executable, "-m", "asrlive", "transcribe", "--format", "json", "--threads", "1",
                           *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    hyps = [json.loads(line)["text"] for line in done.stdout.splitlines()]
    assert cer(sentences, hyps) < HELDOUT_CER_LIMIT, list(zip(sentences, hyps))


# 8 kHz is not here yet: with everything above 4 kHz gone, the interim model still changes this
# sentence ("NICETO DAY" becomes "NIFE O DAY" at step 9000), though it has trained on
# band-limited speech since step 1750.
@pytest.mark.parametrize("rate,channels", [(22050, 1), (44100, 1), (48000, 1), (44100, 2)])
def test_same_text_at_any_rate_and_channel_count(tmp_path, embedded_model, spoken_sentence, rate, channels):
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import stream_file

    audio, _ = spoken_sentence
    plan = ChunkPlan.from_settings(embedded_model.geometry, ChunkSettings())
    ref_path = tmp_path / "ref.wav"
    sf.write(ref_path, audio, 16000, subtype="FLOAT")
    other = soxr.resample(audio, 16000, rate, quality="VHQ")
    if channels == 2:
        other = np.stack([other, other * 0.8], axis=1)
    other_path = tmp_path / f"other{rate}.flac"
    sf.write(other_path, other, rate)
    ref = stream_file(embedded_model, ref_path, plan).text
    assert ref.strip()
    assert stream_file(embedded_model, other_path, plan).text == ref
