"""VLLMEngine: generation with vLLM, one colocated engine serving both roles.

With LoRA the engine loads the base once and serves each role's adapter as a LoRA request;
``push`` writes the role's adapter to a fresh folder under a fresh adapter id (vLLM keeps
serving the old adapter if an id is reused) and drops the old one. With full fine-tuning
the engine holds one set of weights: before a role generates, its trainer weights are
streamed into the running engine in place (``reload_weights``) whenever the engine holds
another role's weights or an older version, and the prefix cache is cleared. With QLoRA
the engine loads the same base in bitsandbytes 4-bit where the installed vLLM can
(``base_quantization``); vLLM 0.32 has no bitsandbytes loader, so there the engine serves
the adapters on the unquantized base (never merged into it) and says so once.

With ``lora_serving="merged"`` a LoRA policy is served as full fine-tuning is: the engine
starts without vLLM's LoRA, and before a role generates, if the engine holds another role's
weights or an older version, the role's merged weights (base + its LoRA delta; a QLoRA base
dequantized first, ``engines/merged.py``) are streamed into it in place.

The engine starts on first use, not at ``attach``: under ``torchrun`` the trainer's process
group must exist first, or vLLM would make one of its own with a single rank.

vLLM is imported only when an engine starts; ``import rzero_pl`` never needs it.
The in-process engine (the default) seeds the global RNGs, replaces
``torch.set_num_threads`` by a no-op and initialises ``torch.distributed``: the first two
are undone after start-up, the last is undone by ``close``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Literal

import torch

from rzero_pl.engines.base import (
    Completion,
    Generation,
    SamplingParams,
    token_budgets,
)
from rzero_pl.engines.hf import encode_prompt
from rzero_pl.engines.merged import merged_weights
from rzero_pl.engines.vllm_support import (
    CPU_KV_CACHE_BYTES,
    base_quantization,
    checkpoint_dtype,
    cpu_kv_cache_bytes,
    kept_process_state,
    lora_slot_rank,
    progress_bar,
    request_seeds,
    require_vllm,
    vllm_sampling_kwargs,
    write_adapter,
)
from rzero_pl.errors import MAX_ITEMS, MAX_SAMPLES, MAX_TOKENS, check_number
from rzero_pl.roles import check_role
from rzero_pl.scale.sharding import full_weights


class VLLMEngine:
    """Generate with vLLM; both roles on one engine (adapters, or weights swapped in place).

    Args:
        dtype: Weights' dtype in the engine (``auto``: the one the checkpoint's ``config.json``
            records, not vLLM's own ``auto``, which turns float32 into bfloat16 on CPU);
            ``float32`` makes its outputs and log-probs match the trainer's float32 ones.
        max_model_len: Longest prompt + completion; None: the model's context length.
        gpu_memory_utilization: Share of GPU memory for weights, activations and KV cache
            (GPU; lower it when the trainer runs out of memory beside the engine).
        kv_cache_memory_bytes: KV-cache size; overrides ``gpu_memory_utilization``. None on
            CPU means 1 GiB.
        max_num_seqs: Sequences decoded together at most.
        enforce_eager: No CUDA graphs / compilation (faster start-up, slower decode).
        max_loras: Adapters resident at once (both roles, plus one while a push swaps).
        max_lora_rank: LoRA slot rank; None: the smallest vLLM rank holding ``policy.lora.r``.
        tensor_parallel_size: GPUs per engine, for a single trainer process; with several
            trainer ranks it must be 1 (one engine per rank, vLLM's ``external_launcher``).
        seed: Engine seed, offset by the rank (seeded requests do not depend on it).
        return_logprobs: Return each sampled token's log-prob under the sampling
            temperature (with top_p/top_k, of the truncated distribution vLLM samples).
        sleep: Sleep between generate calls (weights offloaded, KV cache freed) so that
            optimizer updates get the memory; GPU only (vLLM refuses sleep mode on CPU).
        base_quantization: With a QLoRA (nf4) policy: ``auto``, ``bitsandbytes`` or ``none``
            (see ``base_quantization``).
        lora_serving: How a LoRA policy's roles are served: ``adapter`` (vLLM's LoRA, one
            adapter per role, pushed as a PEFT folder) or ``merged`` (full weights without
            vLLM's LoRA: each role's adapter merged into the base and streamed in place when
            the role's turn comes; a QLoRA base is dequantized, the engine never quantized).
        in_process: Run the engine core in this process (fast start-up; the default).
        engine_kwargs: Further ``vllm.LLM`` keyword arguments, passed unchanged.
    """

    shares_trainer_weights = False  # serves its own copy; trainer weights are pushed to it

    def __init__(
        self,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.5,
        kv_cache_memory_bytes: int | None = None,
        max_num_seqs: int = 256,
        enforce_eager: bool = False,
        max_loras: int = 3,
        max_lora_rank: int | None = None,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        return_logprobs: bool = False,
        sleep: bool = False,
        base_quantization: Literal["auto", "bitsandbytes", "none"] = "auto",
        lora_serving: Literal["adapter", "merged"] = "adapter",
        in_process: bool = True,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        require_vllm()
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(
                f"engine.gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}"
            )
        if max_loras < 2:
            raise ValueError(f"engine.max_loras must be >= 2 (one per role), got {max_loras}")
        check_number("engine.max_loras", max_loras, at_most=MAX_SAMPLES)
        if lora_serving not in ("adapter", "merged"):
            raise ValueError(f"engine.lora_serving must be adapter or merged, got {lora_serving!r}")
        if lora_serving == "merged" and base_quantization == "bitsandbytes":
            raise ValueError(
                "engine.base_quantization: bitsandbytes with lora_serving: merged is not "
                "supported (the merged weights are full precision); set it to auto or none"
            )
        check_number(
            "engine.max_model_len", max_model_len, at_least=1, at_most=MAX_TOKENS, optional=True
        )
        check_number("engine.max_num_seqs", max_num_seqs, at_least=1, at_most=MAX_ITEMS)
        check_number(
            "engine.tensor_parallel_size", tensor_parallel_size, at_least=1, at_most=MAX_SAMPLES
        )
        check_number(
            "engine.kv_cache_memory_bytes", kv_cache_memory_bytes, at_least=1, optional=True
        )
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.kv_cache_memory_bytes = kv_cache_memory_bytes
        self.max_num_seqs = max_num_seqs
        self.enforce_eager = enforce_eager
        self.max_loras = max_loras
        self.max_lora_rank = max_lora_rank
        self.tensor_parallel_size = tensor_parallel_size
        self.seed = seed
        self.return_logprobs = return_logprobs
        self.sleep = sleep
        self.base_quantization = base_quantization
        self.lora_serving = lora_serving
        self.in_process = in_process
        self.engine_kwargs = dict(engine_kwargs or {})
        self.policy: Any = None
        self.llm: Any = None
        self.generated_tokens = 0
        self._versions: dict[str, int] = {}
        self._adapters: dict[str, Any] = {}  # role -> LoRARequest being served
        self._retired: list[Any] = []  # adapters to drop before the next generation
        self._loaded: tuple[str, int] | None = None  # full weights: (role, version) held
        self.streamed_bytes = 0  # bytes of weights streamed in place so far (full or merged)
        self._ids = itertools.count(1)
        self._tmp: str | None = None
        self._owns_process_group = False

    # ---- start-up -----------------------------------------------------------------------

    def attach(self, policy: Any) -> None:
        if self.policy is policy:
            return  # both roles' modules attach the same shared engine
        if self.llm is not None:
            raise RuntimeError("VLLMEngine is already attached to another policy; close() it")
        self.policy = policy
        self._versions = dict.fromkeys(policy.roles, 0)
        if self.sleep and not torch.cuda.is_available():
            raise ValueError("engine.sleep: vLLM refuses sleep mode on CPU; set it to false")

    def start(self) -> None:
        """Start vLLM now; otherwise it starts on first use (after the trainer's process
        group, if any, exists)."""
        if self.llm is not None:
            return
        if self.policy is None:
            raise RuntimeError("VLLMEngine used before attach(policy)")
        self._tmp = tempfile.mkdtemp(prefix="rzero-vllm-")
        dist = torch.distributed
        self._owns_process_group = dist.is_available() and not dist.is_initialized()
        self.llm = self._start(self._llm_kwargs(self.policy))
        if self._serves_adapters:
            for role in self.policy.roles:
                self._publish_adapter(role)
        self._sleep()

    @property
    def _serves_adapters(self) -> bool:
        """True when roles are vLLM LoRA adapters (a LoRA policy, ``lora_serving: adapter``)."""
        return self.policy.is_lora and self.lora_serving == "adapter"

    def _llm_kwargs(self, policy: Any) -> dict[str, Any]:
        on_cpu = not torch.cuda.is_available()
        kv_bytes = self.kv_cache_memory_bytes
        if kv_bytes is None and on_cpu and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            kv_bytes = CPU_KV_CACHE_BYTES
        kwargs: dict[str, Any] = {
            "model": policy.source.path,
            "dtype": checkpoint_dtype(policy.source.path) if self.dtype == "auto" else self.dtype,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "kv_cache_memory_bytes": kv_bytes,
            "max_num_seqs": self.max_num_seqs,
            "enforce_eager": self.enforce_eager,
            "tensor_parallel_size": self.tensor_parallel_size,
            "seed": self.seed,
            "enable_sleep_mode": self.sleep,
            "logprobs_mode": "processed_logprobs",  # after temperature, as the trainer's
        }
        if on_cpu:
            # vLLM 0.32's CPU runner crashes on a seeded request whose prefill is split across
            # steps ("CPU Generator does not use offset"): schedule whole prompts only.
            kwargs["enable_chunked_prefill"] = False
        if self._serves_adapters:
            r = policy.lora.r
            kwargs.update(
                enable_lora=True,
                max_loras=self.max_loras,
                max_lora_rank=self.max_lora_rank or lora_slot_rank(r),
            )
        quantization = None
        if self._serves_adapters:  # merged weights are full precision: an unquantized base
            quantization = base_quantization(self.base_quantization, policy.quantization)
        if quantization:
            kwargs["quantization"] = quantization  # the same base in 4-bit, never merged
        kwargs.update(self._distributed_kwargs())
        kwargs.update(self.engine_kwargs)
        return kwargs

    def _distributed_kwargs(self) -> dict[str, Any]:
        """One engine per rank (or tensor-parallel group) inside a multi-rank trainer."""
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return {}
        if self.tensor_parallel_size != 1:
            # A tensor-parallel group would need the same requests from each of its ranks,
            # but every trainer rank generates for its own shard of the prompts.
            raise ValueError(
                f"engine.tensor_parallel_size: {self.tensor_parallel_size} with "
                f"{dist.get_world_size()} trainer ranks is not supported; use 1 (one engine "
                "per GPU, each generating for its rank's prompts)"
            )
        # Unseeded requests differ across ranks; seeded ones (ours) do not depend on it.
        seed = self.seed + dist.get_rank()
        return {"distributed_executor_backend": "external_launcher", "seed": seed}

    def _start(self, kwargs: dict[str, Any]) -> Any:
        from vllm import LLM

        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if self.in_process else "1"
        try:
            with kept_process_state():
                return LLM(**kwargs)
        except (RuntimeError, ValueError) as err:
            text = str(err).lower()
            if "memory" in text or "kv cache" in text:
                raise RuntimeError(
                    f"vLLM could not start for lack of memory ({str(err).splitlines()[0]}); "
                    "lower engine.gpu_memory_utilization or engine.kv_cache_memory_bytes, or "
                    "engine.max_model_len / engine.max_num_seqs"
                ) from err
            raise

    # ---- weights ------------------------------------------------------------------------

    def memory_bytes(self, weight_bytes: float) -> tuple[int, float | None]:
        """Its share of this GPU; on CPU its copy of the weights plus its KV cache."""
        import torch

        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            return 0, self.gpu_memory_utilization * total
        return 0, weight_bytes + cpu_kv_cache_bytes(self.kv_cache_memory_bytes)

    def push(self, role: str) -> int:
        check_role(role)
        self._versions[role] = self._versions.get(role, 0) + 1
        if self.llm is not None and self._serves_adapters:  # before start-up: published then
            self._publish_adapter(role)
        return self._versions[role]

    def version(self, role: str) -> int:
        return self._versions.get(check_role(role), 0)

    def _publish_adapter(self, role: str) -> None:
        """Serve ``role``'s current adapter under a new id; retire the one it replaces."""
        from vllm.lora.request import LoRARequest

        version = self._versions[role]
        folder = write_adapter(self.policy, role, os.path.join(self._tmp, f"{role}-v{version}"))
        old = self._adapters.get(role)
        self._adapters[role] = LoRARequest(f"{role}-v{version}", next(self._ids), folder)
        if old is not None:
            self._retired.append(old)

    def _drop_retired(self) -> None:
        for old in self._retired:
            if old.lora_int_id in self.llm.llm_engine.list_loras():
                self.llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(old.lora_path, ignore_errors=True)
        self._retired.clear()

    def _serve(self, role: str) -> Any:
        """Make the engine serve ``role``'s current weights; return its LoRA request."""
        self._drop_retired()
        if self._serves_adapters:
            return self._adapters[role]
        wanted = (role, self.version(role))
        if self._loaded != wanted:
            # Tied tensors under every name: vLLM's in-place reload keeps the old lm_head of a
            # tied-embedding model unless ``lm_head.weight`` itself arrives.
            if self.policy.is_lora:
                named = merged_weights(self.policy, role)
            else:
                module = self.policy.module(role)
                named = full_weights(module.named_parameters(remove_duplicate=False))
            self._stream(named)
            self._loaded = wanted
        return None

    def _stream(self, named: Iterator[tuple[str, torch.Tensor]]) -> None:
        """Load ``named`` weights into the running engine in place; clear the prefix cache."""
        dtype = self.llm.llm_engine.model_config.dtype  # cast here: vLLM warns per tensor

        def cast() -> Iterator[tuple[str, torch.Tensor]]:
            for name, t in named:
                t = t.to(dtype)
                self.streamed_bytes += t.numel() * t.element_size()
                yield name, t

        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": cast()})
        self.llm.reset_prefix_cache()  # cached blocks were computed by other weights

    def _sleep(self) -> None:
        if self.sleep:
            self.llm.sleep(level=1)

    def _wake(self) -> None:
        if self.sleep:
            self.llm.wake_up()

    # ---- generation ---------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        check_role(role)
        self.start()  # refuses an engine not attached to a policy
        if role not in self.policy.roles:
            raise ValueError(f"policy has no weights for role {role!r}; roles: {self.policy.roles}")
        from vllm import SamplingParams as VLLMSampling

        tok = self.policy.tokenizer
        encoded = [encode_prompt(tok, p) for p in prompts]
        seeds = request_seeds(params.seed, len(prompts), params.n)
        context = self.llm.llm_engine.model_config.max_model_len
        budgets = token_budgets(prompts, encoded, params.max_new_tokens, context)
        sampling = [
            VLLMSampling(
                **vllm_sampling_kwargs(replace(params, max_new_tokens=b), s, self.return_logprobs)
            )
            for s, b in zip(seeds, budgets, strict=True)
        ]
        self._wake()
        try:
            # One request kind per call: vLLM's CPU LoRA path may give requests without an
            # adapter the adapter of a neighbour in the same batch.
            lora = self._serve(role)  # collective under FSDP: even a rank with no prompts
            version = self.version(role)
            requests = [{"prompt_token_ids": ids} for ids in encoded]
            outputs = (
                self.llm.generate(requests, sampling, lora_request=lora, use_tqdm=progress_bar())
                if requests
                else []
            )
        finally:
            self._sleep()
        return [
            Generation(p, ids, [self._completion(c, version) for c in out.outputs])
            for p, ids, out in zip(prompts, encoded, outputs, strict=True)
        ]

    def _completion(self, output: Any, version: int) -> Completion:
        tokens = list(output.token_ids)
        logprobs = None
        if self.return_logprobs:
            logprobs = [step[t].logprob for t, step in zip(tokens, output.logprobs, strict=True)]
        finish = "length" if output.finish_reason == "length" else "stop"
        self.generated_tokens += len(tokens)
        return Completion(output.text, tokens, finish, version, logprobs)

    # ---- shutdown -----------------------------------------------------------------------

    def close(self) -> None:
        """Free the engine, its adapter folders and the process group it initialised."""
        if self.llm is None:
            self.policy = None
            return
        import gc

        from vllm.distributed.parallel_state import (
            destroy_distributed_environment,
            destroy_model_parallel,
        )

        self.llm = None
        gc.collect()
        destroy_model_parallel()
        if self._owns_process_group:  # never the trainer's own process group
            destroy_distributed_environment()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self.policy = None
        self._adapters.clear()
        self._retired.clear()
        self._loaded = None
