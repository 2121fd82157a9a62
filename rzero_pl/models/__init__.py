"""What is trained and sampled: model sources, the policy, and the actor that owns both.

- ``sources``: ``ModelSource`` and its kinds (``PretrainedModel``: a hub id or folder;
  ``GGUFModel``: a GGUF file converted once; ``rzero_pl.toy.ToyModel``).
- ``policy``: ``Policy``, the base model and the role weights (LoRA/QLoRA adapters or full
  models), the KL reference, FSDP2 sharding.
- ``role_weights``: saving and loading a role's weights (what ``Policy.save_role`` and
  ``Policy.load_role`` call).
- ``actor``: ``Actor``, the one owner of the policy and its engine (``rzero_pl.engines``).
"""

from rzero_pl.models.sources import GGUFModel, ModelSource, PretrainedModel

__all__ = ["GGUFModel", "ModelSource", "PretrainedModel"]
