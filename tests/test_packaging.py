"""`pip install .` (not editable) ships the embedded model, and the installed package finds it
from outside the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_and_finds_the_embedded_model(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("asrlive-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("config.json", "encoder.safetensors", "head.safetensors", "vocab.json", "encoder.json",
              "LICENSE-whisper.txt", "language_model/lm.arpa.gz", "language_model/attrs.json"):
        assert f"asrlive/embedded_model/{f}" in names
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q",
                                "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = ("from asrlive.model import embedded_model_dir, load_model; d = embedded_model_dir(); "
             "m = load_model(None, device='cpu'); print(d); print(m.geometry.rf); "
             "from asrlive.decoding import decoder_spec; print(decoder_spec('beam', None, d).lm.order)")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{target}", "HF_HUB_OFFLINE": "1",
           "HOME": str(tmp_path)}
    # Run from an unrelated folder so the source tree cannot be found by accident; the
    # dependencies come from this interpreter's site-packages, after the installed copy.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env["PYTHONPATH"] = ":".join([str(target), *site])
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path[:0] = {env['PYTHONPATH'].split(':')!r}; {probe}"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    folder, rf, lm_order = done.stdout.split()
    assert folder.startswith(str(target)) and rf == "1040" and lm_order == "3"
