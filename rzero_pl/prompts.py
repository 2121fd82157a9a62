"""Role prompts, rendered with the tokenizer's chat template or a plain fallback.

Base models such as OctoThinker ship without a chat template; for them the prompt is
rendered with ``fallback``, a format string over ``{system}`` and ``{user}``. Each text can be
read from a file instead (``system_file``, ``user_file``), so that a run's wording is a setting
(``rzero_pl.released`` reads the released repository's prompts from a local clone).

A role whose config names no prompt (``prompt: null``) asks its model source
(``ModelSource.prompt``): a Hugging Face model answers with ``default_prompt`` here, the toy
model with the prompts it was pretrained on (``rzero_pl.toy.prompts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rzero_pl.roles import check_role

SOLVER_SYSTEM = (
    "Think the problem through step by step, then give the final answer inside \\boxed{}."
)
CHALLENGER_SYSTEM = (
    "You write new, hard problems for a mathematics competition.\n"
    "Work out privately, step by step, a problem that is original, well posed and has one "
    "checkable final answer. It may come from any area: algebra, geometry, number theory, "
    "combinatorics, probability, statistics or calculus. Make it hard enough that fewer than "
    "30% of strong high-school students would solve it, and avoid well-known contest problems "
    "and textbook exercises.\n"
    "Then print only these two blocks, with nothing before, between or after them:\n\n"
    "<question>\nthe complete problem statement\n</question>\n\n"
    "\\boxed{the final answer}"
)
CHALLENGER_USER = "Write one new, challenging problem now, in exactly the format above."
DEFAULT_FALLBACK = "system: {system}\nuser: {user}\nassistant: "
PROBLEM_SLOT = "{problem}"
MAX_PROMPT_CHARS = 65_536  # a larger prompt file is a wrong path (a model's weights)


def read_prompt_file(key: str, path: str) -> str:
    """The text of a prompt file (UTF-8, one final newline dropped); a path that is not a
    readable text file is one line naming ``key`` and the file."""
    limit = MAX_PROMPT_CHARS * 4  # bytes: UTF-8 holds at most 4 per character
    try:
        with Path(path).expanduser().open("rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{key}: cannot read {path} ({reason}); give a text file") from None
    if len(data) > limit:
        raise ValueError(f"{key}: {path} holds over {limit} bytes; not a prompt file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise ValueError(f"{key}: {path} is not UTF-8 text; give a text file")
    return text.removesuffix("\n")


def check_fallback(key: str, fallback: str) -> None:
    """A fallback that formats with ``{system}`` and ``{user}`` alone, else one line."""
    try:
        fallback.format(system="", user="")
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(
            f"{key}: {fallback!r} is not a format string over {{system}} and {{user}} ({err!r}); "
            "write literal braces as {{ and }}"
        ) from None


class RolePrompt:
    """A role's prompt: a system text and a user text with an optional ``{problem}`` slot.

    Args:
        system: The system message; empty for none.
        user: The user message; ``{problem}`` is replaced by the question.
        use_chat_template: Render with the tokenizer's chat template when it has one.
        fallback: Format string over ``{system}`` and ``{user}`` used without a template.
        system_file: Read the system message from this text file (replaces ``system``).
        user_file: Read the user message from this text file (replaces ``user``).
    """

    def __init__(
        self,
        system: str = SOLVER_SYSTEM,
        user: str = PROBLEM_SLOT,
        use_chat_template: bool = True,
        fallback: str = DEFAULT_FALLBACK,
        system_file: str | None = None,
        user_file: str | None = None,
    ) -> None:
        name = type(self).__name__
        check_fallback(f"{name}.fallback", fallback)
        self.system = (
            read_prompt_file(f"{name}.system_file", system_file) if system_file else system
        )
        self.user = read_prompt_file(f"{name}.user_file", user_file) if user_file else user
        self.use_chat_template = use_chat_template
        self.fallback = fallback
        # Where the user text came from, for the error of a missing slot.
        self.user_source = f"{name}.user_file ({user_file})" if user_file else f"{name}.user"

    def check_problem_slot(self, key: str) -> None:
        """Refuse, in one line naming ``key``, a prompt whose user text has no ``{problem}``:
        every question would reach the model as the same empty prompt."""
        if PROBLEM_SLOT not in self.user:
            raise ValueError(
                f"{key}: {self.user_source} has no {PROBLEM_SLOT} slot, so the question would "
                f"never reach the model; put {PROBLEM_SLOT} where the question goes"
            )

    def render(self, tokenizer: Any = None, problem: str = "") -> str:
        """The prompt text for one question (or for none, for the challenger)."""
        user = self.user.replace("{problem}", problem)
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        if self.use_chat_template and template:
            messages = [{"role": "user", "content": user}]
            if self.system:
                messages.insert(0, {"role": "system", "content": self.system})
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return self.fallback.format(system=self.system, user=user)

    def __repr__(self) -> str:
        return f"RolePrompt(system={self.system[:30]!r}..., user={self.user!r})"


def solver_prompt() -> RolePrompt:
    return RolePrompt(system=SOLVER_SYSTEM, user="{problem}")


def challenger_prompt() -> RolePrompt:
    return RolePrompt(system=CHALLENGER_SYSTEM, user=CHALLENGER_USER)


def default_prompt(role: str) -> RolePrompt:
    """rzero-pl's prompt for ``role``: what a model source without prompts of its own answers
    (``rzero_pl.models.sources.ModelSource.prompt``)."""
    return solver_prompt() if check_role(role) == "solver" else challenger_prompt()
