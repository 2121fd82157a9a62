"""Answer checking: reading a final answer, deciding equivalence, and majority votes.

- ``extraction``: the final answer of a response (``boxed``: the last ``\\boxed{}``, the
  paper's rule; ``flexible``: a box, else ``#### X``, an answer phrase, the last number).
- ``answers``: ``matches`` (grading: gold first) and ``equivalent`` (clustering: symmetric);
  ``answer_forms`` and ``answer_values`` settle most pairs locally and exactly.
- ``votes``: ``majority_votes``, the largest cluster of equivalent answers (the label, p̂).
- ``verify_pool``/``verify_worker``: math-verify in worker processes with hard timeouts.
"""
