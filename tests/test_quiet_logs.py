"""Quiet logs (issue 26 item 3): what every phase printed again and no user acts on.

The whole command's log is checked in tests/test_evolution.py
(``test_every_scalar_the_readme_lists_is_logged``): one model summary, one set of hardware
lines, no save bar, no deprecation warning. These are the pieces, one by one.
"""

from __future__ import annotations

import logging
import warnings

import lightning as L
import pytest

from rzero_pl.cli import quiet_known_noise
from rzero_pl.models import PretrainedModel
from rzero_pl.models.policy import Policy
from rzero_pl.models.role_weights import no_progress_bars
from rzero_pl.scale.memory import recomputes_activations


def _hardware_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "available:" in r.getMessage()]


def test_the_hardware_lines_are_printed_once_per_process(caplog):
    quiet_known_noise()
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
        first = _hardware_lines(caplog)  # none if an earlier test of this process printed them
        L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
        L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    assert _hardware_lines(caplog) == first
    assert len(first) <= 2  # "GPU available: …" and "TPU available: …", once


def test_saving_a_role_draws_no_progress_bar(tiny_model_dir, tmp_path, capfd):
    """Full weights: transformers' "Writing model shards" bar (a LoRA save draws none)."""
    from transformers.utils import logging as hf_logging

    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None)
    capfd.readouterr()
    shown = hf_logging.is_progress_bar_enabled()
    policy.save_role("solver", str(tmp_path / "solver"))
    out, err = capfd.readouterr()
    assert "Writing model shards" not in out + err and "%|" not in out + err
    assert hf_logging.is_progress_bar_enabled() == shown  # as it was before the save


def test_no_progress_bars_restores_them_after_an_error():
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    with pytest.raises(RuntimeError), no_progress_bars():
        assert not hf_logging.is_progress_bar_enabled()
        raise RuntimeError("a failed save")
    assert hf_logging.is_progress_bar_enabled()


class _RenamedCheckpointing:
    """A transformers model as newer releases have it: the old name warns."""

    is_activation_checkpointing = True

    @property
    def is_gradient_checkpointing(self) -> bool:
        warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=2)
        return True


class _OldCheckpointing:
    is_gradient_checkpointing = True


def test_activation_checkpointing_is_read_without_the_deprecated_name():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert recomputes_activations(_RenamedCheckpointing())
    assert recomputes_activations(_OldCheckpointing())
    assert not recomputes_activations(object())


def test_the_memory_estimate_is_printed_once_per_role_not_per_phase(
    tiny_model_dir, toy_questions_file, tmp_path, caplog
):
    """Every phase of a role is a fit of the same module with the same settings: its memory
    estimate is printed at the first, and again only when it changes (here: micro-batches)."""
    from builders import quiet_trainer, tiny_solver
    from rzero_pl.datamodules import LabelledQuestionsDataModule

    from rzero_pl.questions import JsonlQuestions

    module = tiny_solver(tiny_model_dir, loss=None, lr=1e-2, log_rollouts_every=1)
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=2)
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        for phase, micro_batch in enumerate((4, 4, 4, 8)):
            module.micro_batch_size = micro_batch
            folder = tmp_path / f"phase{phase}"
            trainer = quiet_trainer(folder, logs="t", gradient_clip_val=1.0)
            trainer.fit(module, data)
    lines = [r.getMessage() for r in caplog.records if "estimated peak memory" in r.getMessage()]
    assert len(lines) == 2, lines  # the first phase's, and the one after the change
    assert all(line.startswith("[solver] estimated peak memory per rank: ") for line in lines)
    assert lines[0] != lines[1]
