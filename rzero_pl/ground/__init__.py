"""The ground floor of a run: what every floor above may use, importing nothing above it.

- ``io``: atomic file writes and the JSON / JSONL readers (a kill never leaves half a file).
- ``faults``: named kill points, for the fault tests' subprocess runs.
- ``update_guard``: the update guard (NaN/inf and signal-free updates are skipped, then stop a run).
- ``weights``: ``resolve_weights``, a role's weights folder or a run's ``best``.
- ``seeds``: ``derive``, the one rule by which a run's seeds are derived from a base seed.

They lived in ``run/`` beside the loop, which made every user of an atomic file import from
the top floor.
"""
