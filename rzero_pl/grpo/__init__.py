"""The GRPO side: the loss maths, the shared Lightning module, rollouts and the two roles.

- ``loss``: group advantages, the clipped policy loss and its aggregations, the k3 KL, and
  ``GRPOLoss`` (the objective's settings, defined once).
- ``module``: ``GRPOModule``, one epoch = one rollout step (sample, score, advantages,
  served in micro-batches to ``training_step``).
- ``rollout``, ``rollout_log``: the typed ``Rollout``, minibatch marks, logged tables.
- ``challenger``: ``ChallengerGRPO`` (reward terms from ``rzero_pl.rewards``).
- ``solver``: ``SolverGRPO`` (the ``correct`` term: answer ≡ label).
"""
