"""Every bad setting of the core run is refused before training, naming the setting.

(`tests/test_cli.py` checks through the real command line that such an error is one stderr
line with exit code 2; here each case runs in-process, which is fast.)
"""

import pytest

from src.errors import ConfigError
from src.train import train

BAD_SETTINGS = [
    ("model.n_components=0", "model.n_components=0", "an integer >= 1"),
    ("model.base=laplace", "model.base='laplace'", "one of uniform, normal"),
    ("data.truth.stds=[0.5,-0.3,0.8]", "data.truth.stds=", "> 0"),
    ("data.truth.stds=[0.5,0.3]", "data.truth.stds=", "a list of 3 numbers"),
    ("data.truth.weights=[0.5,0.6,-0.1]", "data.truth.weights=", "sum to 1"),
    ("data.truth.weights=[0.3,0.3,0.3]", "data.truth.weights=", "sum to 1"),
    ("data.batch_size=0", "data.batch_size=0", "an integer >= 1"),
    ("data.n_train=0", "data.n_train=0", "an integer >= 1"),
    ("data.n_val=-1", "data.n_val=-1", "an integer >= 1"),
    ("data.n_test=2.5", "data.n_test=2.5", "an integer >= 1"),
    ("optimizer.lr=0", "optimizer.lr=0", "> 0"),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1", "> 0"),
    ("callbacks.figures.every_n_epochs=0", "callbacks.figures.every_n_epochs=0", ">= 1"),
]


@pytest.mark.parametrize(("override", "named", "valid"), BAD_SETTINGS)
def test_bad_setting_names_the_key_and_the_valid_range(override, named, valid, make_cfg, tmp_path):
    with pytest.raises(ConfigError) as error:
        train(make_cfg(override))
    message = str(error.value)
    assert message.startswith(named) and valid in message and "\n" not in message
    assert not (tmp_path / "checkpoints").exists()


def test_seed003_sizes_are_named_as_the_notes_name_them(make_cfg):
    with pytest.raises(ConfigError, match=r"^data\.num_train=0 "):
        train(make_cfg("data=seed003", "data.num_train=0"))


# handed to Lightning, torch or numpy: checked against what they accept. Each message names the
# setting and what is valid; where the library itself refuses, the start of its reason.
LIBRARY_SETTINGS = [
    ("seed=abc", "seed='abc' is invalid: expected an integer in [0, 2³²)"),
    ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5 is invalid: expected an integer >= -1"),
    (
        "+trainer.accumulate_grad_batches=0",
        "trainer.accumulate_grad_batches=0 is invalid: expected an integer >= 1",
    ),
    # Lightning's own refusal at construction, named by the setting its message names
    ("trainer.devices=abc", "trainer.devices='abc' is invalid: expected what Trainer accepts ("),
    (
        "trainer.accelerator=tpu",
        "trainer.accelerator='tpu' is invalid: expected one of cpu, gpu, cuda, mps, auto",
    ),
    ("trainer.max_epochs=-1", "trainer.max_epochs=-1 is invalid: expected an integer >= 0, or -1"),
    ("trainer.max_epochs=-1 +trainer.max_steps=-1", "trainer.max_epochs=-1 is invalid"),
    ("optimizer.lr=nan", "optimizer.lr=nan is invalid: expected a finite number > 0"),
    ("optimizer.lr=-1", "optimizer.lr=-1 is invalid: expected a finite number > 0"),
    ("+optimizer.betas=[0.9,1.0]", "optimizer.betas=[0.9, 1.0] is invalid: expected a list of 2"),
    (
        "optimizer.weight_decay=inf",
        "optimizer.weight_decay=inf is invalid: expected a finite number",
    ),
    (
        "scheduler=cosine scheduler.T_max=0",
        "scheduler.T_max=0 is invalid: expected an integer >= 1",
    ),
    (
        "scheduler=plateau scheduler.factor=1",
        "scheduler.factor=1 is invalid: expected a number in (0, 1)",
    ),
    (
        "scheduler=plateau scheduler.mode=2.5",
        "scheduler.mode=2.5 is invalid: expected one of min, max",
    ),
]


@pytest.mark.parametrize(("overrides", "named"), LIBRARY_SETTINGS)
def test_a_library_setting_is_refused_before_training_in_one_line(
    overrides, named, make_cfg, tmp_path
):
    from src.errors import UserError

    with pytest.raises(UserError) as error:
        train(make_cfg(*overrides.split(), "optimizer=adamw"))
    assert str(error.value).startswith(named) and "\n" not in str(error.value)
    assert not (tmp_path / "checkpoints").exists()  # nothing ran


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["model.normalized=2"], "model.normalized=2"),
        (
            ["model=histogram", "data=hw1_d20", "model.analytic_grad=abc"],
            "model.analytic_grad='abc'",
        ),
        (["model=earthquake", "data=earthquake", "fit=cavi", "fit.learn_tau=1"], "fit.learn_tau=1"),
        (["+callbacks.model_checkpoint.save_weights_only=yes"], "callbacks.model_checkpoint."),
    ],
)
def test_a_flag_takes_true_or_false_only(overrides, named, make_cfg):
    """Python reads any non-empty value as true: "abc" or 1 would switch the option on."""
    with pytest.raises(ConfigError) as error:
        train(make_cfg(*overrides))
    assert str(error.value).startswith(named) and str(error.value).endswith("true or false")
