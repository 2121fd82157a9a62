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
from typing import Literal, NamedTuple

from rzero_pl.benchmarks.general_prompt import BenchmarkPrompt, OptionLayout
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


def check_clone(clone: str, commit: str, files: list[str], owner: str = "ReleasedPrompt") -> Path:
    """The clone's folder, once it is at ``commit`` and holds ``files`` unchanged; else one
    line that names the clone, the file or the commit (as settings of ``owner``), and the
    command that fixes it."""
    folder = Path(clone).expanduser()
    fetch = f"git clone {RELEASED_REPOSITORY} {clone} && git -C {clone} checkout {commit}"
    if not folder.is_dir():
        raise ValueError(f"{owner}.clone_dir: no folder {clone}; get the release: {fetch}")
    code, out = _git(folder, "rev-parse", "--show-toplevel", "HEAD")
    top, _, head = out.partition("\n")
    if code == 0 and Path(top).resolve() != folder.resolve():
        code, out = 1, f"it lies inside the repository {top}"
    if code != 0:
        first = out.splitlines()[0] if out else "no HEAD"
        raise ValueError(f"{owner}.clone_dir: {clone} is not a git clone ({first}); {fetch}")
    if len(commit) < 7 or not head.startswith(commit.lower()):
        raise ValueError(
            f"{owner}.commit: {clone} is at {head}, expected {commit}; run "
            f"git -C {clone} checkout {commit}, or set commit to the one you mean to read"
        )
    for file in files:
        restore = f"git -C {clone} checkout {commit} -- {file}"
        if not (folder / file).is_file():
            raise ValueError(f"{owner}.clone_dir: {clone}/{file} is missing; {restore}")
        code, changes = _git(folder, "status", "--porcelain", "--", file)
        if code != 0 or changes:
            raise ValueError(
                f"{owner}.clone_dir: {clone}/{file} differs from commit {commit}; {restore}"
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


# ----------------------------------------------------------------------------- general benchmarks

# The released evaluation scripts of the general benchmarks (evaluation/evaluate.bash runs
# each): the user message is the question, its options (a helper function letters them),
# then an instruction; without a chat template a plain "user: …" string worded apart.
BENCHMARK_SOURCES: dict[str, str] = {
    "supergpqa": "evaluation/eval_supergpqa.py",
    "mmlu_pro": "evaluation/eval_mmlupro.py",
    "bbeh": "evaluation/eval_bbeh.py",
}
ReleasedBenchmark = Literal["supergpqa", "mmlu_pro", "bbeh"]


@dataclass(frozen=True)
class ReleasedBenchmarkTexts:
    """What a released evaluation script asks: the user text and the plain (template-less)
    rendering around ``{problem}``, and the option layout (``None``: no options)."""

    user: str
    fallback: str
    fallback_user: str
    options: OptionLayout | None


def _assignments(tree: ast.AST) -> list[tuple[str, ast.expr]]:
    """(name, value) of each assignment to one plain name, in source order."""
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Assign)), key=lambda n: n.lineno)
    return [
        (n.targets[0].id, n.value)
        for n in nodes
        if len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
    ]


def _parts(node: ast.expr, names: dict[str, ast.expr], depth: int = 0) -> list[ast.expr]:
    """The terms of a ``+`` chain, a name replaced by the chain it was assigned."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _parts(node.left, names, depth) + _parts(node.right, names, depth)
    if isinstance(node, ast.Name) and node.id in names and depth < 3:
        return _parts(names[node.id], names, depth + 1)
    return [node]


def _text(parts: list[ast.expr]) -> str | None:
    """The concatenated literal strings, or None when any part is not one."""
    if not all(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts):
        return None
    return "".join(p.value for p in parts)  # type: ignore[attr-defined]


def _option_layout(function: ast.FunctionDef, before: str) -> OptionLayout | None:
    """The layout a ``form_options``-like helper builds: a header string, a list of letters,
    and a loop over ``zip(options, letters)`` adding one f-string line per option."""
    values = [n.value for n in function.body if isinstance(n, ast.Assign)]
    header = next((v.value for v in values if isinstance(v, ast.Constant)), None)
    letters = next((_text(v.elts) for v in values if isinstance(v, ast.List)), None)
    loop = next((n for n in function.body if isinstance(n, ast.For)), None)
    if not (isinstance(header, str) and letters and loop and isinstance(loop.target, ast.Tuple)):
        return None
    zipped, names = loop.iter, [getattr(t, "id", None) for t in loop.target.elts]
    first = (getattr(zipped, "args", None) or [None])[0]
    if len(names) != 2 or not isinstance(first, ast.Name) or len(loop.body) != 1:
        return None
    params = [a.arg for a in function.args.args]
    option, letter = names if first.id in params else names[::-1]
    line = getattr(loop.body[0], "value", None)
    if not isinstance(line, ast.JoinedStr):
        return None
    pieces = []
    for piece in line.values:
        if isinstance(piece, ast.Constant):
            pieces.append(str(piece.value).replace("{", "{{").replace("}", "}}"))
        elif isinstance(piece, ast.FormattedValue) and getattr(piece.value, "id", None) in names:
            pieces.append("{option}" if piece.value.id == option else "{letter}")  # type: ignore[attr-defined]
        else:
            return None
    return OptionLayout(before=before + header, line="".join(pieces), separator="", letters=letters)


class _Shape(NamedTuple):
    """A prompt string's parts: literal text before the question, between it and the options
    (the call of ``helper``, a function of the file; None: no options), and after."""

    before: str
    between: str
    helper: ast.FunctionDef | None
    after: str


def _shape(parts: list[ast.expr], helpers: dict[str, ast.FunctionDef]) -> _Shape | None:
    """The shape of ``parts``: one non-literal (the question), then at most a call of one of
    ``helpers``, the rest literal strings; else None."""
    literal = [isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts]
    if literal.count(False) not in (1, 2):
        return None
    at = literal.index(False)
    call = next((j for j in range(at + 1, len(parts)) if not literal[j]), at)
    helper = None
    if call != at:
        helper = helpers.get(getattr(getattr(parts[call], "func", None), "id", ""))
        if helper is None:
            return None
    before, between = _text(parts[:at]), _text(parts[at + 1 : call])
    after = _text(parts[call + 1 :])
    assert before is not None and between is not None and after is not None  # all literal
    return _Shape(before, between, helper, after)


def released_benchmark_texts(source: str) -> ReleasedBenchmarkTexts | None:
    """The user message, plain rendering and option layout of a released evaluation script's
    ``source``, or None when they are not there (parsed, never run)."""
    tree = ast.parse(source)
    messages = _messages(tree)
    if not messages or set(messages) != {"user"}:
        return None
    assigned = _assignments(tree)
    names = dict(reversed(assigned))  # a name's first value
    helpers = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    chat = _shape(_parts(messages["user"], names), helpers)
    if chat is None or chat.before:
        return None
    # The template-less string: a prefix, then the same question and options as the chat's.
    shapes = (_shape(_parts(v, names), helpers) for _, v in assigned if isinstance(v, ast.BinOp))
    plain = next((p for p in shapes if p and p.before and p[1:3] == chat[1:3]), None)
    options = None if chat.helper is None else _option_layout(chat.helper, chat.between)
    if plain is None or (chat.helper is not None and options is None):
        return None
    prefix = plain.before.replace("{", "{{").replace("}", "}}")  # a format string's literal
    return ReleasedBenchmarkTexts(
        PROBLEM_SLOT + chat.after, prefix + "{user}", PROBLEM_SLOT + plain.after, options
    )


def read_released_benchmark(
    clone: str, benchmark: str, commit: str = RELEASED_COMMIT
) -> ReleasedBenchmarkTexts:
    """What the released evaluation script of ``benchmark`` (a key of ``BENCHMARK_SOURCES``)
    asks, read from ``clone``; one line naming the setting and the fix when it cannot."""
    key = "ReleasedBenchmarkPrompt"
    if benchmark not in BENCHMARK_SOURCES:
        raise ValueError(
            f"{key}.benchmark: {benchmark!r} is not one of {sorted(BENCHMARK_SOURCES)}"
        )
    file = BENCHMARK_SOURCES[benchmark]
    path = check_clone(clone, commit, [file], owner=key) / file
    try:
        texts = released_benchmark_texts(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as err:
        raise ValueError(f"{key}.clone_dir: cannot read {path} ({err})") from None
    if texts is None:
        raise ValueError(
            f"{key}.benchmark: no {benchmark} prompt in {path} (a user message built from the "
            f"question, its options and an instruction); it is not that file as of commit {commit}"
        )
    return texts


class ReleasedBenchmarkPrompt(BenchmarkPrompt):
    """A general benchmark's prompt as the released evaluation script builds it, read from a
    local clone: its user message, its option layout and its plain rendering.

    Args:
        clone_dir: Folder of a clone of github.com/Chengsong-Huang/R-Zero.
        benchmark: ``supergpqa``, ``mmlu_pro`` or ``bbeh``; ``BENCHMARK_SOURCES`` names the
            script each is read from.
        commit: The commit the clone must be at (default: ``RELEASED_COMMIT``).
        use_chat_template: Render with the tokenizer's chat template when it has one.
    """

    def __init__(
        self,
        clone_dir: str,
        benchmark: ReleasedBenchmark,
        commit: str = RELEASED_COMMIT,
        use_chat_template: bool = True,
    ) -> None:
        texts = read_released_benchmark(clone_dir, benchmark, commit)
        super().__init__(
            system="",
            user=texts.user,
            use_chat_template=use_chat_template,
            fallback=texts.fallback,
            options=texts.options,
            fallback_user=texts.fallback_user,
        )
        self.clone_dir, self.benchmark, self.commit = clone_dir, benchmark, commit
        self.user_source = (
            f"ReleasedBenchmarkPrompt({benchmark}) from {clone_dir}/{BENCHMARK_SOURCES[benchmark]}"
        )

    def __repr__(self) -> str:
        return (
            f"ReleasedBenchmarkPrompt(benchmark={self.benchmark!r}, clone_dir={self.clone_dir!r})"
        )
