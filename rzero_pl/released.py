"""The released R-Zero code's prompts, read from the user's own clone of its repository.

The released repository (github.com/Chengsong-Huang/R-Zero) has no licence file, so its
wording is not copied into rzero-pl. ``ReleasedPrompt`` reads it, each time a run is
configured, from a local clone: it names the files it reads (``SOURCES``) and the commit it
expects (``RELEASED_COMMIT``, a typed setting), and refuses in one line a clone at another
commit, a missing file, a file changed since that commit, or a file whose messages it cannot
find. The prompts are Python literals in the release, so they are found by parsing the file
(``ast``), never by running it: the ``{"role": …, "content": …}`` list built in a named
function, inside the branch that tests a named ``format_prompt`` marker.

    git clone https://github.com/Chengsong-Huang/R-Zero ../R-Zero
    git -C ../R-Zero checkout 5699329d018d79535b7910abdedf5a6eebf355fd

then, in a config, ``prompt: {class_path: rzero_pl.released.ReleasedPrompt, init_args:
{clone_dir: ../R-Zero, prompt: solver}}`` (``cli_configs/qwen3_4b_released.yaml``).
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rzero_pl.prompts import PROBLEM_SLOT, RolePrompt

RELEASED_REPOSITORY = "https://github.com/Chengsong-Huang/R-Zero"
# 2026-02-04, the newest commit; the prompt files last changed at 61c34bb (2025-09-09).
RELEASED_COMMIT = "5699329d018d79535b7910abdedf5a6eebf355fd"
ReleasedName = Literal["solver", "challenger", "evaluation"]


@dataclass(frozen=True)
class ReleasedSource:
    """Where a released prompt lives: a file of the clone, the function that builds the
    messages, and the ``format_prompt`` marker its branch tests (``None``: no branch)."""

    file: str
    function: str
    marker: str | None = None


SOURCES: dict[str, ReleasedSource] = {
    # Solver training (solver.jinja's marker); the reward servers and the curriculum's votes
    # (start_vllm_server.py, question_evaluate/evaluate.py) repeat the same system text.
    "solver": ReleasedSource("verl/utils/dataset.py", "_build_messages", "solver_format"),
    # Challenger training (questioner.jinja's marker); question_generate.py repeats it.
    "challenger": ReleasedSource("verl/utils/dataset.py", "_build_messages", "questioner_format"),
    # The math benchmarks (evaluation/evaluate.bash runs generate.py for each).
    "evaluation": ReleasedSource("evaluation/generate.py", "main"),
}
# The release's rendering without a chat template: no assistant cue; the evaluation repeats
# the system text after the question (generate.py).
RELEASED_FALLBACKS = {
    "solver": "system: {system}\nuser: {user}",
    "challenger": "system: {system}\nuser: {user}",
    "evaluation": "system: {system}\nuser: {user}\n{system}",
}


def _git(clone: Path, *args: str) -> tuple[int, str]:
    """``git -C clone args``: exit status and output (stderr when it failed)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(clone), *args], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return 1, f"git failed: {err}"
    return done.returncode, (done.stdout if done.returncode == 0 else done.stderr).strip()


def check_clone(clone: str, commit: str, files: list[str]) -> Path:
    """The clone's folder, once it is at ``commit`` and holds ``files`` unchanged; else one
    line that names the clone, the file or the commit, and the command that fixes it."""
    folder = Path(clone).expanduser()
    fetch = f"git clone {RELEASED_REPOSITORY} {clone} && git -C {clone} checkout {commit}"
    if not folder.is_dir():
        raise ValueError(f"ReleasedPrompt.clone_dir: no folder {clone}; get the release: {fetch}")
    code, out = _git(folder, "rev-parse", "--show-toplevel", "HEAD")
    top, _, head = out.partition("\n")
    if code == 0 and Path(top).resolve() != folder.resolve():
        code, out = 1, f"it lies inside the repository {top}"
    if code != 0:
        first = out.splitlines()[0] if out else "no HEAD"
        raise ValueError(f"ReleasedPrompt.clone_dir: {clone} is not a git clone ({first}); {fetch}")
    if len(commit) < 7 or not head.startswith(commit.lower()):
        raise ValueError(
            f"ReleasedPrompt.commit: {clone} is at {head}, expected {commit}; run "
            f"git -C {clone} checkout {commit}, or set commit to the one you mean to read"
        )
    for file in files:
        restore = f"git -C {clone} checkout {commit} -- {file}"
        if not (folder / file).is_file():
            raise ValueError(f"ReleasedPrompt.clone_dir: {clone}/{file} is missing; {restore}")
        code, changes = _git(folder, "status", "--porcelain", "--", file)
        if code != 0 or changes:
            raise ValueError(
                f"ReleasedPrompt.clone_dir: {clone}/{file} differs from commit {commit}; {restore}"
            )
    return folder


def _marker_branch(node: ast.AST, marker: str) -> ast.If | None:
    """The first ``if "<marker>" in …:`` under ``node`` (in source order)."""
    for branch in sorted(
        (n for n in ast.walk(node) if isinstance(n, ast.If)), key=lambda n: n.lineno
    ):
        test = branch.test
        if (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Constant)
            and test.left.value == marker
            and isinstance(test.ops[0], ast.In)
        ):
            return branch
    return None


def _messages(node: ast.AST) -> dict[str, ast.expr] | None:
    """``role`` → ``content`` of the first list of ``{"role": …, "content": …}`` dicts."""
    lists = sorted(
        (n for n in ast.walk(node) if isinstance(n, ast.List) and n.elts),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for candidate in lists:
        found = {}
        for item in candidate.elts:
            if not isinstance(item, ast.Dict):
                break
            fields = {
                k.value: v
                for k, v in zip(item.keys, item.values, strict=True)
                if isinstance(k, ast.Constant)
            }
            role = fields.get("role")
            if not (isinstance(role, ast.Constant) and "content" in fields):
                break
            found[role.value] = fields["content"]
        else:
            return found
    return None


def released_texts(source: str, where: ReleasedSource) -> tuple[str, str] | None:
    """(system, user) of the released messages in a file's ``source``, or None when they are
    not there. A user content that is not a literal is the question: ``{problem}``."""
    tree = ast.parse(source)
    functions = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == where.function
    ]
    if not functions:
        return None
    scope: ast.AST | None = functions[0]
    if where.marker is not None:
        branch = _marker_branch(functions[0], where.marker)
        scope = None if branch is None else ast.Module(body=branch.body, type_ignores=[])
    messages = _messages(scope) if scope is not None else None
    if not messages or "system" not in messages or "user" not in messages:
        return None
    system, user = messages["system"], messages["user"]
    if not (isinstance(system, ast.Constant) and isinstance(system.value, str)):
        return None
    literal = isinstance(user, ast.Constant) and isinstance(user.value, str)
    return system.value, user.value if literal else PROBLEM_SLOT


def read_released(clone: str, prompt: str, commit: str = RELEASED_COMMIT) -> tuple[str, str]:
    """(system, user) of the released ``prompt`` (a key of ``SOURCES``) in ``clone``."""
    if prompt not in SOURCES:
        raise ValueError(f"ReleasedPrompt.prompt: {prompt!r} is not one of {sorted(SOURCES)}")
    where = SOURCES[prompt]
    folder = check_clone(clone, commit, [where.file])
    path = folder / where.file
    try:
        texts = released_texts(path.read_text(encoding="utf-8"), where)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as err:
        raise ValueError(f"ReleasedPrompt.clone_dir: cannot read {path} ({err})") from None
    if texts is None:
        branch = f", branch {where.marker!r}" if where.marker else ""
        raise ValueError(
            f"ReleasedPrompt.prompt: no {prompt} messages in {path} (function "
            f"{where.function}{branch}); it is not that file as of commit {commit}"
        )
    return texts


class ReleasedPrompt(RolePrompt):
    """A prompt of the released R-Zero code, read from a local clone of its repository.

    Args:
        clone_dir: Folder of a clone of github.com/Chengsong-Huang/R-Zero.
        prompt: ``solver`` (training, votes), ``challenger`` or ``evaluation`` (math
            benchmarks); ``SOURCES`` names the file each is read from.
        commit: The commit the clone must be at (default: ``RELEASED_COMMIT``; 7 or more
            hex digits).
        use_chat_template: Render with the tokenizer's chat template when it has one.
        fallback: The rendering without a template (default: the release's for ``prompt``,
            ``RELEASED_FALLBACKS``).
    """

    def __init__(
        self,
        clone_dir: str,
        prompt: ReleasedName,
        commit: str = RELEASED_COMMIT,
        use_chat_template: bool = True,
        fallback: str | None = None,
    ) -> None:
        system, user = read_released(clone_dir, prompt, commit)
        fallback = RELEASED_FALLBACKS[prompt] if fallback is None else fallback
        super().__init__(system, user, use_chat_template, fallback)
        self.clone_dir, self.prompt, self.commit = clone_dir, prompt, commit
        self.user_source = f"ReleasedPrompt({prompt}) from {clone_dir}/{SOURCES[prompt].file}"

    def __repr__(self) -> str:
        return f"ReleasedPrompt(prompt={self.prompt!r}, clone_dir={self.clone_dir!r})"
