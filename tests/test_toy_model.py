"""The toy base model: the pretraining schedule, the build, the cache and its lock."""

from __future__ import annotations

import json
import os

import pytest

from rzero_pl.models.sources import ModelSource
from rzero_pl.toy.prompts import TOY_SOLVER


def test_lr_schedule():
    from rzero_pl.toy.pretrain import Recipe, lr_at

    recipe = Recipe(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, recipe) == pytest.approx(0.1)
    assert lr_at(9, 100, recipe) == pytest.approx(1.0)
    assert lr_at(10, 100, recipe) == pytest.approx(1.0)
    assert lr_at(100, 100, recipe) == pytest.approx(0.1)
    assert 0.1 < lr_at(50, 100, recipe) < 1.0


def _tiny(tmp_path, steps=20):
    from rzero_pl.toy import ToyModel
    from rzero_pl.toy.pretrain import Recipe

    source = ToyModel(steps=steps, cache_dir=str(tmp_path), progress=False)
    source.recipe = Recipe(batch_size=4, context=64, warmup_steps=5)  # part of the key
    return source


def test_tiny_toy_model_builds_loads_and_is_cached(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rzero_pl.toy import model as toy_model

    source = _tiny(tmp_path)
    assert isinstance(source, ModelSource) and source.shipped() is None
    assert not os.path.exists(source.folder)  # nothing built yet
    path = source.path
    assert os.path.basename(path).startswith("toy-xs-20steps-seed0-")
    assert sorted(os.listdir(tmp_path)) == [
        os.path.basename(path),
        os.path.basename(path) + ".lock",
    ]

    model = AutoModelForCausalLM.from_pretrained(path)  # plain transformers, no rzero-pl code
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.tie_word_embeddings and model.config.hidden_size == 128
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    enc = tokenizer([TOY_SOLVER.render(None, problem="What is 1 + 2?")], return_tensors="pt")
    out = model.generate(
        **enc, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    assert out.shape[1] <= enc["input_ids"].shape[1] + 5
    with open(os.path.join(path, "toy_model.json")) as f:
        assert json.load(f)["stats"]["steps"] == 20

    # same settings: same folder, no second training
    monkeypatch.setattr(toy_model, "pretrain", lambda *a, **k: pytest.fail("retrained"))
    again = _tiny(tmp_path)
    assert again.path == path  # pretrain would fail the test: found, not retrained
    loaded, tok = again.load(dtype=torch.float32)
    assert loaded.dtype == torch.float32 and tok.bos_token_id == tokenizer.bos_token_id
    assert _tiny(tmp_path, steps=21).folder != path  # other settings, other folder


def test_half_built_folders_are_never_used(tmp_path):
    source = _tiny(tmp_path, steps=3)
    orphan = tmp_path / f".{os.path.basename(source.folder)}.tmp-killed"  # a build killed by -9
    orphan.mkdir()
    os.makedirs(source.folder)
    open(os.path.join(source.folder, "config.json"), "w").close()  # a crashed copy, say
    assert not os.path.isfile(os.path.join(source.folder, "model.safetensors"))
    path = source.path
    assert os.path.isfile(os.path.join(path, "model.safetensors"))
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_toy_model_signature_is_a_cli_schema(monkeypatch):
    jsonargparse = pytest.importorskip("jsonargparse")
    from rzero_pl.toy import ToyModel

    monkeypatch.delenv("RZERO_PL_CACHE", raising=False)
    parser = jsonargparse.ArgumentParser()
    parser.add_class_arguments(ToyModel, "model")
    cfg = parser.parse_args(["--model.size=s", "--model.steps=7", "--model.levels=[1,1,1,0,0]"])
    assert cfg.model.size == "s" and cfg.model.steps == 7
    source = ToyModel(**cfg.model.as_dict())
    assert source.levels == (1 / 3, 1 / 3, 1 / 3, 0.0, 0.0)
    assert source.cache_dir == os.path.expanduser("~/.cache/rzero_pl")
    with pytest.raises(SystemExit):
        parser.parse_args(["--model.size=xl"])
    monkeypatch.setenv("RZERO_PL_CACHE", "/tmp/somewhere")
    assert ToyModel().cache_dir == "/tmp/somewhere"


def test_two_builders_train_once(tmp_path, monkeypatch):
    import threading
    import time

    from rzero_pl.toy import model as toy_model

    calls = []

    def fake_pretrain(folder, *args, **kwargs):
        calls.append(folder)
        time.sleep(0.3)  # long enough for the other builder to reach the lock
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            open(os.path.join(folder, name), "w").close()
        return {"steps": 0}

    monkeypatch.setattr(toy_model, "pretrain", fake_pretrain)
    paths = []
    builders = [threading.Thread(target=lambda: paths.append(_tiny(tmp_path).path)) for _ in "ab"]
    for thread in builders:
        thread.start()
    for thread in builders:
        thread.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and os.path.isdir(paths[0])
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_the_default_toy_base_is_the_shipped_one(monkeypatch, tmp_path):
    import torch

    from rzero_pl.toy import ToyModel
    from rzero_pl.toy import model as toy_model

    monkeypatch.setattr(toy_model, "pretrain", lambda *a, **k: pytest.fail("built, not shipped"))
    source = ToyModel(cache_dir=str(tmp_path))
    # The shipped folder was built from exactly the default settings: a change to the corpus,
    # the recipe or the prompts must come with a rebuilt base (python -m rzero_pl.toy.model
    # --build --ship), or every toy number would silently describe another model.
    with open(os.path.join(toy_model.SHIPPED, toy_model.MARKER)) as f:
        recorded = json.load(f)
    assert recorded["settings"] == json.loads(json.dumps(source.settings()))
    assert source.path == toy_model.SHIPPED
    assert not os.listdir(tmp_path)  # nothing built, nothing cached
    model, tokenizer = source.load(dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) == recorded["stats"]["parameters"]
    assert tokenizer.pad_token_id is not None
    # other settings, or build=True, are built here (into the cache)
    assert ToyModel(cache_dir=str(tmp_path), build=True).shipped() is None
    assert ToyModel(cache_dir=str(tmp_path), seed=1).shipped() is None


def test_ship_replaces_the_target_whole(tmp_path):
    from rzero_pl.toy import model as toy_model

    built = _tiny(tmp_path / "cache", steps=2).path
    target = tmp_path / "base"
    target.mkdir()
    (target / "stale.txt").write_text("from an older base")
    assert toy_model.ship(built, str(target)) == str(target)
    assert sorted(os.listdir(target)) == sorted(os.listdir(built))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".ship-") or n.endswith(".old")]
    with pytest.raises(FileNotFoundError, match="not a complete toy model folder"):
        toy_model.ship(str(tmp_path / "cache"), str(target))


REBUILD_TOLERANCE = 0.08  # absolute greedy accuracy on the 500 held-out problems


def _toy_accuracy(root, *overrides):
    from rzero_pl.cli import main

    config = os.path.join(os.path.dirname(__file__), "..", "cli_configs", "toy_eval.yaml")
    main(["test", "--config", config, f"--trainer.default_root_dir={root}", *overrides])
    with open(os.path.join(root, "eval", "test", "eval.json")) as f:
        return json.load(f)["benchmarks"]["toy"]["accuracy"]


@pytest.mark.slow
def test_a_rebuild_reaches_the_shipped_accuracy(tmp_path, toy_rebuild):
    """Rebuilding the default base here (about 6.5 minutes on one thread; conftest starts it
    first, beside the other tests) scores within 8 points of the shipped one, both scored on
    this machine: a build is seeded but CPU kernels differ, so two machines' builds differ a
    little (bench/TOY.md: 32.2 % and 36.4 %), never a lot."""
    model = "--actor.policy.init_args.model.init_args"
    shipped = _toy_accuracy(str(tmp_path / "shipped"))
    built = [n for n in os.listdir(toy_rebuild) if n.startswith("toy-xs-1500steps")]
    assert built  # `python -m rzero_pl.toy.model --build` wrote the default base there
    rebuilt = _toy_accuracy(
        str(tmp_path / "rebuilt"),
        f"{model}.build=true",  # found built in the cache: loaded, not trained again
        f"{model}.cache_dir={toy_rebuild}",
        f"{model}.progress=false",
    )
    assert 0.2 < shipped < 0.5
    assert abs(rebuilt - shipped) <= REBUILD_TOLERANCE, (rebuilt, shipped)
