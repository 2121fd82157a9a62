"""A general benchmark's whole prompt as a setting: its wording and how options are laid out.

By default a general benchmark (SuperGPQA, MMLU-Pro, BBEH) is asked with rzero-pl's option
layout and instruction (``registry.benchmark_prompt``). A :class:`BenchmarkPrompt` replaces
both: ``{problem}`` in its user text is the bare question followed by its options in the
prompt's :class:`OptionLayout`, and the instruction is whatever the user text says
(``Evaluation.general_prompts``; ``rzero_pl.released.ReleasedBenchmarkPrompt`` reads the
released evaluation scripts' from a clone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rzero_pl.benchmarks.registry import (
    LETTERS,
    OPTIONS_HEADER,
    Benchmark,
    BenchmarkRow,
    benchmark_prompt,
)
from rzero_pl.prompts import DEFAULT_FALLBACK, PROBLEM_SLOT, RolePrompt


@dataclass(frozen=True)
class OptionLayout:
    """How options follow the question: ``before``, then one ``line`` per option (a format
    string over ``{letter}`` and ``{option}``) joined by ``separator``, lettered by ``letters``.

    The default is rzero-pl's own layout (``A. red`` on its own line after ``Options:``).
    """

    before: str = OPTIONS_HEADER
    line: str = "{letter}. {option}"
    separator: str = "\n"
    letters: str = LETTERS

    def __post_init__(self) -> None:
        try:
            self.line.format(letter="A", option="x")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"OptionLayout.line: {self.line!r} is not a format string over {{letter}} and "
                f"{{option}} ({err!r}); write literal braces as {{{{ and }}}}"
            ) from None
        if not self.letters:
            raise ValueError("OptionLayout.letters: empty; give one letter per option, e.g. ABCD")

    def lay_out(self, options: list[str]) -> str:
        """``before`` and the lettered options (as many as there are letters, like ``zip``)."""
        pairs = zip(self.letters, options, strict=False)  # the release zips, so may we
        lines = [self.line.format(letter=k, option=o) for k, o in pairs]
        return self.before + self.separator.join(lines)


class BenchmarkPrompt(RolePrompt):
    """A general benchmark's prompt: ``{problem}`` is the bare question with its options in
    ``options``'s layout; no instruction is added (write it in ``user``).

    Args:
        system: The system message; empty for none (the general benchmarks' usual).
        user: The user message; ``{problem}`` is replaced by the question and its options.
        use_chat_template: Render with the tokenizer's chat template when it has one.
        fallback: Format string over ``{system}`` and ``{user}`` used without a template.
        system_file: Read the system message from this text file (replaces ``system``).
        user_file: Read the user message from this text file (replaces ``user``).
        options: How a multiple-choice question's options are lettered and laid out.
        fallback_user: The user text without a chat template (default: ``user``), for a
            release that words its plain prompt differently.
    """

    def __init__(
        self,
        system: str = "",
        user: str = PROBLEM_SLOT,
        use_chat_template: bool = True,
        fallback: str = DEFAULT_FALLBACK,
        system_file: str | None = None,
        user_file: str | None = None,
        options: OptionLayout | None = None,
        fallback_user: str | None = None,
    ) -> None:
        super().__init__(system, user, use_chat_template, fallback, system_file, user_file)
        self.options = options or OptionLayout()
        self.fallback_user = fallback_user

    def question(self, row: BenchmarkRow) -> str:
        """The ``{problem}`` text: the row's question, then its options in this layout (the
        rows hold them in rzero-pl's layout too, which is taken off first)."""
        if not row.options:
            return row.problem
        bare = row.problem.split(OPTIONS_HEADER)[0]
        return bare + self.options.lay_out(row.options)

    def render(self, tokenizer: Any = None, problem: str = "") -> str:
        """As :meth:`RolePrompt.render`; without a template, ``fallback_user`` when given."""
        templated = self.use_chat_template and getattr(tokenizer, "chat_template", None)
        if templated or self.fallback_user is None:
            return super().render(tokenizer, problem)
        user = self.fallback_user.replace(PROBLEM_SLOT, problem)
        return self.fallback.format(system=self.system, user=user)


def question_text(bench: Benchmark, row: BenchmarkRow, template: RolePrompt) -> str:
    """What fills ``template``'s ``{problem}`` slot for ``row``: a :class:`BenchmarkPrompt`
    lays the question out itself; any other prompt gets ``benchmark_prompt``'s text."""
    if isinstance(template, BenchmarkPrompt):
        return template.question(row)
    return benchmark_prompt(bench, row)
