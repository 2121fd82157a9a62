"""Generation backends behind one protocol."""

from rzero_pl.engines.base import Completion, Engine, Generation, SamplingParams
from rzero_pl.engines.hf import HFEngine
from rzero_pl.engines.vllm import VLLMEngine  # imports vllm only when attached

__all__ = ["Completion", "Engine", "Generation", "HFEngine", "SamplingParams", "VLLMEngine"]
