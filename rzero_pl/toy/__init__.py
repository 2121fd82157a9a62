"""The toy arithmetic world: a small world where the truth is known.

Integer expressions and their parser (``expression``), questions with a difficulty knob and an
exact grader (``arithmetic``), the toy roles' prompts (``prompts``), a character tokenizer, a
synthetic corpus, a small Llama pretrained on it and cached (``ToyModel``), and a held-out
benchmark (``toy_benchmark``).
"""

from rzero_pl.toy.arithmetic import DEFAULT_MIX, ToyProblem, grade
from rzero_pl.toy.benchmark import toy_benchmark, toy_questions
from rzero_pl.toy.expression import evaluate_expression
from rzero_pl.toy.model import ToyModel
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER

__all__ = [
    "DEFAULT_MIX",
    "TOY_CHALLENGER",
    "TOY_SOLVER",
    "ToyModel",
    "ToyProblem",
    "evaluate_expression",
    "grade",
    "toy_benchmark",
    "toy_questions",
]
