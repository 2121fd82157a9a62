"""The run: the co-evolution loop and everything that makes it resumable and safe.

- ``evolution``: ``Evolution``, iterations of challenger → curriculum → solver → evaluation.
- ``state``: ``state.json`` (finished phases, step axis, fingerprint), the run lock, the
  TensorBoard step offsets.
- ``selection``: the collapse guard (best iteration, patience, ``best.json``).
- ``checkpoints``: atomic checkpoints (the atomic files, kill points, update guard and
  weights resolution they build on are ``rzero_pl.ground``, below every floor).
- ``build``: a run built from its configuration (``RunBuilder``, ``build_run``), for ``fit``,
  ``test`` and ``analyze``; ``posthoc``: ``rzero-pl analyze RUN_DIR``.
- ``trackers``: the loggers a run logs through (its TensorBoard, plus any configured);
  ``progress``: the line each phase starts with (iteration, elapsed, ETA).
"""
