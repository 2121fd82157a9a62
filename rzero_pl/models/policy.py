"""The policy: one base model and the weights of each role.

With LoRA both roles are named PEFT adapters (``challenger``, ``solver``) on one shared,
frozen base. QLoRA is the same with the base loaded in bitsandbytes nf4. With full
fine-tuning each role owns a full copy of the model.

The KL reference (only when a trainer asks for one) is either the ``base`` model (LoRA: the
base with adapters disabled; full: a frozen copy of the base) or, the released code's
choice, ``start``: the role's weights as its phase began (LoRA: a frozen third adapter,
``reference``, copied from the role's adapter; full: the frozen copy, overwritten with the
role's weights). ``snapshot_reference`` takes that copy when a phase begins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn

from rzero_pl.errors import MAX_TOKENS, check_number
from rzero_pl.ground.weights import resolve_weights
from rzero_pl.models import role_weights
from rzero_pl.models.sources import ModelSource
from rzero_pl.roles import ROLES, check_role
from rzero_pl.scale import sharding
from rzero_pl.scale.sharding import FullyShard

REFERENCE = "reference"  # the frozen adapter that holds a role's phase-start weights (LoRA)


class LoraSettings:
    """LoRA adapter shape, shared by both roles.

    Args:
        r: Rank of the update matrices.
        alpha: Scaling numerator (the update is scaled by ``alpha / r``).
        dropout: Dropout on the adapter input during training.
        target_modules: Module names to adapt, or ``all-linear``.
    """

    def __init__(
        self,
        r: int = 16,
        alpha: int = 32,
        dropout: float = 0.0,
        target_modules: str | list[str] = "all-linear",
    ) -> None:
        if r < 1:
            raise ValueError(f"lora.r must be >= 1, got {r}")
        check_number("lora.r", r, at_most=MAX_TOKENS)  # a rank above any hidden size
        check_number("lora.alpha", alpha, above=0, at_most=MAX_TOKENS)
        check_number("lora.dropout", dropout, at_least=0)
        if dropout >= 1:
            raise ValueError(f"lora.dropout must be < 1, got {dropout}")
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules

    def peft_config(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
        )


class Policy(nn.Module):
    """Base model plus per-role weights; the module every trainer optimises.

    Args:
        model: Where the base model comes from (``PretrainedModel``, ``ToyModel``).
        lora: Adapter settings; None trains full weights.
        quantization: ``nf4`` loads the base in 4-bit (QLoRA); requires ``lora``.
        gradient_checkpointing: Recompute activations in the backward pass.
        roles: The roles that get their own weights.
        weights: Saved role weights to start from, by role (folders written by ``save_role``,
            e.g. a finished run's ``iter2/solver/weights``, or ``RUN_DIR/best`` for the best
            iteration the run recorded; the base's own weights when the best is the base).
        fsdp: FSDP2 settings, used when the trainer's strategy is ``ModelParallelStrategy``
            (default ``FullyShard()``: bf16 on GPU, no offload).
    """

    def __init__(
        self,
        model: ModelSource,
        lora: LoraSettings | None = None,
        quantization: Literal["nf4"] | None = None,
        gradient_checkpointing: bool = False,
        roles: Sequence[str] = ROLES,
        weights: dict[str, str] | None = None,
        fsdp: FullyShard | None = None,
    ) -> None:
        super().__init__()
        if quantization is not None and lora is None:
            raise ValueError(
                "policy.quantization: nf4 quantises the frozen base and needs LoRA adapters "
                "to train; set policy.lora (QLoRA) or remove policy.quantization"
            )
        self.source = model
        self.fsdp = fsdp or FullyShard()
        self.lora = lora
        self.quantization = quantization
        self.roles = tuple(check_role(r) for r in roles)
        base, self.tokenizer = model.load(**self._load_overrides())
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.models = nn.ModuleDict()
        if lora is None:
            self.models[self.roles[0]] = base
            for role in self.roles[1:]:
                self.models[role] = model.load(**self._load_overrides())[0]
        else:
            self.models["shared"] = self._with_adapters(base, lora)
        if gradient_checkpointing:
            for m in self.models.values():
                m.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
        self._reference: nn.Module | None = None
        self._snapshot_of: str | None = None  # the role whose weights the reference holds
        for role, folder in (weights or {}).items():
            resolved = resolve_weights(folder, role)  # RUN_DIR/best: the best iteration's
            if resolved is not None:
                self.load_role(role, resolved)

    def _load_overrides(self) -> dict[str, Any]:
        if self.quantization != "nf4":
            return {}
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        return {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
            )
        }

    def _with_adapters(self, base: nn.Module, lora: LoraSettings) -> nn.Module:
        from peft import get_peft_model, prepare_model_for_kbit_training

        if self.quantization:
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
            _keep_4bit_trainable_on_cpu(base)
        peft_model = get_peft_model(base, lora.peft_config(), adapter_name=self.roles[0])
        for role in self.roles[1:]:
            peft_model.add_adapter(role, lora.peft_config())
        return peft_model

    # ---- which weights a role uses ------------------------------------------------------

    @property
    def is_lora(self) -> bool:
        return self.lora is not None

    def module(self, role: str) -> nn.Module:
        """The model that computes ``role``'s logits, with its weights active."""
        check_role(role)
        if role not in self.roles:
            raise ValueError(f"policy has no weights for role {role!r}; roles: {self.roles}")
        if not self.is_lora:
            return self.models[role]
        model = self.models["shared"]
        if model.active_adapter != role:
            model.set_adapter(role)
        return model

    def trainable_parameters(self, role: str) -> list[nn.Parameter]:
        """The parameters an optimizer for ``role`` updates."""
        self.module(role)
        if not self.is_lora:
            return [p for p in self.models[role].parameters() if p.requires_grad]
        marker = f".{role}."
        params = []
        for name, p in self.models["shared"].named_parameters():
            if "lora_" in name and marker in name:
                p.requires_grad_(True)
                params.append(p)
        return params

    def trainable_names(self) -> set[str]:
        """State-dict keys (relative to this module) that training can change."""
        if not self.is_lora:
            return {f"models.{n}" for n, _ in self.models.named_parameters()}
        frozen = f".{REFERENCE}."  # the phase-start reference: never trained, never saved
        return {
            f"models.{n}"
            for n, _ in self.models.named_parameters()
            if "lora_" in n and frozen not in n
        }

    # ---- the KL reference ---------------------------------------------------------------

    def enable_reference(self, kind: Literal["base", "start"] = "base") -> None:
        """Prepare a KL reference: the ``base`` model, or a slot for a role's ``start`` weights.

        LoRA: ``base`` is free (adapters disabled); ``start`` adds the frozen ``reference``
        adapter. Full weights: a frozen copy of the base, loaded once.
        """
        if self.is_lora:
            model = self.models["shared"]
            if kind == "start" and REFERENCE not in model.peft_config:
                model.add_adapter(REFERENCE, self.lora.peft_config())
                self.module(self.roles[0])  # add_adapter leaves the active adapter alone
            return
        if self._reference is not None:
            return
        ref = self.source.load(**self._load_overrides())[0]
        ref.requires_grad_(False).eval()
        # Kept out of ``self.models`` so it never reaches an optimizer or a checkpoint.
        object.__setattr__(self, "_reference", ref)

    @property
    def has_start_reference(self) -> bool:
        """True once ``snapshot_reference`` has copied a role's weights into the reference."""
        return self._snapshot_of is not None

    @torch.no_grad()
    def snapshot_reference(self, role: str) -> None:
        """Copy ``role``'s current weights into the reference (the phase-start reference).

        Called when a phase begins, before a checkpoint is restored: on a resumed phase the
        policy then still holds the weights the phase started from.
        """
        check_role(role)
        if self.is_lora:
            params = dict(self.models["shared"].named_parameters())
            marker, target = f".{role}.", f".{REFERENCE}."
            if not any(target in name for name in params):
                raise RuntimeError("policy.enable_reference('start') was not called")
            for name, param in params.items():
                if target in name:
                    param.copy_(params[name.replace(target, marker)])
                    param.requires_grad_(False)
        else:
            if self._reference is None:
                raise RuntimeError("policy.enable_reference() was not called")
            source = dict(self.models[role].named_parameters())
            for name, param in self._reference.named_parameters():
                param.copy_(source[name])
        self._snapshot_of = role

    @torch.no_grad()
    def clear_reference_snapshot(self) -> None:
        """Make the reference the base again (a role that asks for ``base`` after one that
        asked for ``start``; with full weights the base is reloaded into the frozen copy)."""
        if not self.has_start_reference:
            return
        if not self.is_lora:
            base = self.source.load(**self._load_overrides())[0]
            source = dict(base.named_parameters())
            for name, param in self._reference.named_parameters():
                param.copy_(source[name])
        self._snapshot_of = None

    @contextlib.contextmanager
    def reference(self, role: str) -> Iterator[nn.Module]:
        """Yield the model whose log-probs are the KL reference for ``role``."""
        snapshot = self._snapshot_of
        if snapshot not in (None, role):
            raise RuntimeError(f"the KL reference holds {snapshot}'s weights, not {role}'s")
        if self.is_lora:
            model = self.module(role)
            if snapshot == role:
                model.set_adapter(REFERENCE)
                try:
                    yield model
                finally:
                    model.set_adapter(role)
                    self.trainable_parameters(role)  # set_adapter froze the role's adapter
                return
            with model.disable_adapter():
                yield model
            return
        if self._reference is None:
            raise RuntimeError("policy.enable_reference() was not called before reference()")
        device = next(self.models[role].parameters()).device
        self._reference.to(device)
        yield self._reference

    # ---- sharding (FSDP2) ----------------------------------------------------------------

    def _roots(self) -> list[nn.Module]:
        roots = list(self.models.values())
        return roots + ([self._reference] if self._reference is not None else [])

    @property
    def is_sharded(self) -> bool:
        return any(sharding.is_sharded(m) for m in self.models.values())

    def fully_shard(self, mesh: Any) -> None:
        """``fully_shard`` every model (and the KL reference) by decoder layer over ``mesh``."""
        for model in self._roots():
            sharding.apply_fully_shard(model, mesh, self.fsdp)

    def gathered(self) -> contextlib.AbstractContextManager:
        """Full weights on every rank inside the block (a no-op unless sharded); collective.

        ``Actor.gathered`` calls it only for an engine that samples these modules.
        """
        if not self.is_sharded:
            return contextlib.nullcontext()
        return sharding.gathered(self._roots())

    # ---- saving and loading role weights ------------------------------------------------

    def save_role(self, role: str, folder: str) -> str:
        """Write ``role``'s weights in Hugging Face form: a PEFT adapter or a model folder.

        The folder is written next to its destination and renamed into place, so a crash
        never leaves a half-written folder under the final name. With several ranks every
        rank calls it (under FSDP the weights are gathered); only rank 0 writes.
        """
        return role_weights.save_role(self, role, folder)

    def load_role(self, role: str, folder: str) -> None:
        """Load weights written by ``save_role`` into ``role`` (continuing a run)."""
        role_weights.load_role(self, role, folder)


def _keep_4bit_trainable_on_cpu(model: nn.Module) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference.

    Why: on a CPU with AVX512-BF16, bitsandbytes (0.50) repacks a ``Linear4bit`` weight the
    first time it runs in eval mode without gradients (our generation) and never unpacks it;
    the packed kernel has no backward, so every later training step gets no gradient through
    the 4-bit layers, silently. The packing also fails on layers narrower than 64 inputs.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
