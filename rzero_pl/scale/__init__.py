"""Scale: many ranks, sharded weights, memory and threads.

- ``distributed``: ranks, shards of a step's items, gathers (identities on one process).
- ``sharding``: FSDP2 ``fully_shard`` and the strategy checks.
- ``memory``: the peak-memory estimate printed at each phase's start.
- ``threads``: torch threads per rank on CPU.
"""
