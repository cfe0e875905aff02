"""How asrlive.model finds and checks a model: hub ids served from the Hugging Face cache without
the network, configs and checkpoints it cannot stream refused in one line."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from asrlive.cli import main
from asrlive.model import ModelLoadError, load_geometry, load_model

REVISION = "0123456789abcdef0123456789abcdef01234567"
REFUSED_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there


@dataclass
class FakeHub:
    cache: Path
    contacts: list  # every address a socket tried to connect to

    def add(self, repo_id: str, folder: Path, drop: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> str:
        """Cache ``folder``'s files, less ``drop``, as hub model ``repo_id`` at REVISION, laid out
        as huggingface_hub lays out a download; ``absent``: files the cache remembers the hub
        does not have."""
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        shutil.copytree(folder, repo / "snapshots" / REVISION, ignore=shutil.ignore_patterns(*drop))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(REVISION)
        for name in absent:
            marker = repo / ".no_exist" / REVISION / name
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return repo_id


@pytest.fixture
def hub(tmp_path, monkeypatch) -> FakeHub:
    """An empty Hugging Face cache under tmp_path, with the hub on (not offline) at an endpoint
    that refuses connections, and any socket connection recorded and failed at once."""
    import huggingface_hub.constants as hub_constants

    home = tmp_path / "hf"
    cache = home / "hub"
    cache.mkdir(parents=True)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # Telemetry off: huggingface_hub's own telemetry asks the hub for a registry of agents (one
    # request a day, 3 s at most) whenever it makes request headers, even for a cached file.
    for name, value in {"HF_HOME": str(home), "HF_HUB_CACHE": str(cache), "HF_ENDPOINT": REFUSED_ENDPOINT,
                        "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
        monkeypatch.setenv(name, value)
    # huggingface_hub reads these from the environment once, when first imported.
    for name, value in {"HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HOME": str(home),
                        "HF_HUB_CACHE": str(cache),
                        "ENDPOINT": REFUSED_ENDPOINT,
                        "HUGGINGFACE_CO_URL_TEMPLATE": REFUSED_ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}"}.items():
        monkeypatch.setattr(hub_constants, name, value)
    contacts: list = []

    def no_network(sock, address):
        contacts.append(address)
        # Not an OSError: huggingface_hub would retry that for about a minute.
        raise AssertionError(f"network contacted: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    return FakeHub(cache, contacts)


def edited_copy(source: Path, folder: Path, **config_changes) -> Path:
    """A copy of model folder ``source`` with its config.json changed (a value None: removed)."""
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    for key, value in config_changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def pickled(folder: Path) -> Path:
    """``folder`` with its safetensors weights replaced by the old pickled format."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_cached_hub_model_loads_without_the_network(hub, tiny_model_dir):
    repo_id = hub.add("org/tiny", tiny_model_dir)
    geometry = load_geometry(repo_id)
    assert hub.contacts == []
    assert geometry == load_geometry(tiny_model_dir)
    model = load_model(repo_id, device="cpu")
    assert model.name == repo_id and model.vocab[0] == "<pad>"
    assert hub.contacts == []


def test_cached_hub_model_known_to_lack_a_preprocessor_config_is_not_asked_again(hub, tiny_model_dir):
    repo_id = hub.add("org/bare", tiny_model_dir, drop=("preprocessor_config.json",),
                      absent=("preprocessor_config.json",))
    geometry = load_geometry(repo_id)
    assert hub.contacts == []
    assert geometry.do_normalize is True


def test_adapter_is_refused_before_streaming(tmp_path, tiny_model_dir, capsys):
    """The adapter's strided convs leave fewer frames than the geometry says: streaming failed
    on the first window ("model gave 11 frames for a window the geometry says has 82")."""
    folder = edited_copy(tiny_model_dir, tmp_path / "m", add_adapter=True)
    assert "add_adapter" in one_line_error(load_model, folder, device="cpu")
    assert "add_adapter" in one_line_error(load_geometry, folder)
    assert main(["rf", "--model", str(folder)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add_adapter" in err


def test_cached_pickled_hub_model_asks_for_allow_pickle(hub, tmp_path, tiny_model_dir):
    repo_id = hub.add("org/pickled", pickled(edited_copy(tiny_model_dir, tmp_path / "m")))
    message = one_line_error(load_model, repo_id, device="cpu")
    assert message.startswith(f"{repo_id}: no .safetensors weights") and "--allow-pickle" in message
    assert message.count(repo_id) == 1
    before = set(threading.enumerate())
    assert load_model(repo_id, device="cpu", allow_pickle=True).vocab[0] == "<pad>"
    # transformers asks the hub about pickled weights from a thread of its own.
    for thread in set(threading.enumerate()) - before:
        thread.join(10)
    assert hub.contacts == []


def test_unknown_model_type_is_one_line(tmp_path, tiny_model_dir, capsys):
    folder = edited_copy(tiny_model_dir, tmp_path / "m", model_type="wav2vec3")
    for message in (one_line_error(load_model, folder, device="cpu"), one_line_error(load_geometry, folder)):
        assert message.startswith(f"{folder}: unreadable model config (ValueError: ") and "wav2vec3" in message
    assert main(["rf", "--model", str(folder)]) == 4
    assert capsys.readouterr().err.count("\n") == 1


def test_weights_of_another_size_are_named(tmp_path, tiny_model_dir):
    folder = edited_copy(tiny_model_dir, tmp_path / "m", hidden_size=64)
    message = one_line_error(load_model, folder, device="cpu")
    assert "above report" not in message
    assert message.startswith(f"{folder}: the weights do not fit the config: wav2vec2.")
    assert "(32,) in the weights, (64,) by the config" in message


def test_tilde_in_a_model_path_is_expanded(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(tiny_model_dir, tmp_path / "w2v")
    model = load_model("~/w2v", device="cpu")
    assert model.name == str(tmp_path / "w2v")
    # ONNX Runtime runs only models from a folder, which it finds by the model's name.
    assert load_model("~/w2v", device="cpu", backend="onnxruntime", threads=1).backend == "onnxruntime"


def test_config_without_architectures_loads_by_its_model_type(tmp_path, tiny_model_dir, tiny_model):
    import numpy as np

    folder = edited_copy(tiny_model_dir, tmp_path / "m", architectures=None)
    samples = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    np.testing.assert_array_equal(load_model(folder, device="cpu").log_probs(samples), tiny_model.log_probs(samples))


def test_weights_without_a_ctc_head_are_refused(tmp_path, tiny_model_dir):
    """A converted pretraining checkpoint: the model type says CTC, but transformers would
    make up the head."""
    from safetensors.torch import load_file, save_file

    folder = edited_copy(tiny_model_dir, tmp_path / "m", architectures=None)
    state = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("lm_head.")}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    assert "lm_head" in one_line_error(load_model, folder, device="cpu")
    (folder / "config.json").write_text(json.dumps({**json.loads((folder / "config.json").read_text()),
                                                    "architectures": ["Wav2Vec2ForPreTraining"]}))
    assert "not a CTC model" in one_line_error(load_model, folder, device="cpu")


def test_missing_preprocessor_config_means_normalised_input_everywhere(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("preprocessor_config.json"))
    assert load_geometry(folder).do_normalize is True
    assert load_model(folder, device="cpu").do_normalize is True
    assert main(["rf", "--model", str(folder)]) == 0
    assert "per-window input normalisation" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["org/na me", "org/name.", "~nosuchuser-asrlive/model"])
def test_a_malformed_model_name_is_one_line(source):
    for load in (load_geometry, lambda s: load_model(s, device="cpu")):
        with pytest.raises(ModelLoadError) as caught:
            load(source)
        assert "\n" not in str(caught.value) and source in str(caught.value)
