"""The model card's prompt section: the wording, or where the run read it from."""

from __future__ import annotations

import types

from rzero_pl.export.card import prompt_text
from rzero_pl.released import RELEASED_COMMIT


def run_with(prompt: dict) -> types.SimpleNamespace:
    """A run whose saved config prompts the solver (and the challenger) with ``prompt``."""
    config = {
        "model": {"class_path": "rzero_pl.grpo.solver.SolverGRPO", "init_args": {"prompt": prompt}},
        "evolution": {"challenger": {"init_args": {"prompt": prompt}}},
    }
    return types.SimpleNamespace(config=config)


def test_a_released_prompt_names_its_clone_file_and_commit_not_its_wording():
    prompt = {
        "class_path": "rzero_pl.released.ReleasedPrompt",
        "init_args": {
            "clone_dir": "../R-Zero",
            "prompt": "solver",
            "commit": RELEASED_COMMIT,
            "use_chat_template": True,
            "fallback": None,
        },
    }
    text = prompt_text(run_with(prompt), "solver")
    assert text.splitlines()[0].startswith(
        f"- released prompt 'solver' read from `../R-Zero/verl/utils/dataset.py` at commit "
        f"`{RELEASED_COMMIT}` (https://github.com/Chengsong-Huang/R-Zero; its wording is not"
    )
    assert "`use_chat_template`: True" in text and "system" not in text
    challenger = {**prompt, "init_args": {**prompt["init_args"], "prompt": "challenger"}}
    assert "released prompt 'challenger'" in prompt_text(run_with(challenger), "challenger")


def test_a_prompt_read_from_files_names_the_files_and_a_plain_one_shows_its_words():
    files = {"system": "S", "user": "{problem}", "system_file": "sys.txt", "user_file": None}
    text = prompt_text(
        run_with({"class_path": "rzero_pl.prompts.RolePrompt", "init_args": files}), "solver"
    )
    assert text.splitlines() == [
        "- `system`: read from the file `sys.txt`",
        "- `user`: '{problem}'",
    ]
    plain = {"system": "Be brief.", "user": "{problem}", "fallback": "{system} {user}"}
    assert prompt_text(run_with(plain), "challenger").splitlines() == [
        "- `system`: 'Be brief.'",
        "- `user`: '{problem}'",
        "- `fallback`: '{system} {user}'",
    ]
