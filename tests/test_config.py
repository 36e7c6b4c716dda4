"""`--set` values: JSON first, then numbers as typed in a shell where the setting takes a number."""

from dataclasses import dataclass

import pytest

from datadistill.config import apply_overrides, from_dict, parse_override
from datadistill.errors import ConfigError


@dataclass
class Settings:
    work: str = "w"
    lr: float = 0.1
    epochs: int = 1
    weight: float | str = "auto"
    ngrams: list[int] | None = None


@pytest.mark.parametrize(
    "text, value",
    [
        ("lr=1e-3", 0.001),
        ("lr=.5", 0.5),
        ("lr=5.", 5.0),
        ("lr=-.25e-1", -0.025),
        ("epochs=+2", 2),
        ("epochs=+0", 0),
        ("weight=.5", 0.5),
        ("weight=auto", "auto"),
        ("ngrams=[2, 3]", [2, 3]),
        ("ngrams=null", None),
        ("work=5.", "5."),  # a string setting keeps the text as typed
        ("work=007", "007"),
        ("work=１２", "１２"),
        ("work=work/run 2", "work/run 2"),
    ],
)
def test_a_set_value_is_read_as_the_setting_takes_it(text, value):
    key, raw = parse_override(text)
    got = getattr(from_dict(Settings, {key[0]: raw}), key[0])
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs=5.", "config.epochs: expected an integer, got 5.0"),
        ("lr=1.2.3", "config.lr: expected a number, got '1.2.3'"),
        ("lr=1_000", "config.lr: expected a number, got '1_000'"),
        ("lr=１.５", "config.lr: expected a number, got '１.５'"),
    ],
)
def test_a_set_value_that_is_no_number_for_a_number_setting_is_named(text, message):
    key, raw = parse_override(text)
    with pytest.raises(ConfigError) as e:
        from_dict(Settings, {key[0]: raw})
    assert str(e.value) == message


def test_a_number_too_long_for_python_is_refused_in_one_line():
    for text in ("lr=1" + "0" * 5000, "lr=+1" + "0" * 5000):
        key, raw = parse_override(text)
        with pytest.raises(ConfigError, match=r"^config.lr: expected a number, got '\+?10000"):
            from_dict(Settings, {key[0]: raw})


def test_parse_override_needs_equals():
    with pytest.raises(ConfigError, match=r"--set 'train.lr': expected KEY=VALUE, e.g. --set train.lr=1e-3"):
        parse_override("train.lr")


def test_apply_overrides_refuses_a_value_as_section():
    with pytest.raises(ConfigError, match=r"'lr' is not a section"):
        apply_overrides({"train": {"lr": 0.1}}, ["train.lr.x=1"])
    assert apply_overrides({"train": {"lr": 0.1}}, ["train.lr=2"]) == {"train": {"lr": 2}}
