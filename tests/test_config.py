"""`--set` values: JSON first, then numbers as typed in a shell, then strings."""

import pytest

from datadistill.config import apply_overrides, parse_override
from datadistill.errors import ConfigError


@pytest.mark.parametrize(
    "text, value",
    [
        ("train.lr=1e-3", 0.001),
        ("label.classical_weight=.5", 0.5),
        ("distill.epochs=+2", 2),
        ("x=+0", 0),
        ("x=5.", 5.0),
        ("x=-.25e-1", -0.025),
        ("x=[2, 3]", [2, 3]),
        ("x=null", None),
        ("x=auto", "auto"),
        ("x=1.2.3", "1.2.3"),
        ("x=.", "."),
        ("work=work/run 2", "work/run 2"),
    ],
)
def test_parse_override_values(text, value):
    key, got = parse_override(text)
    assert got == value and type(got) is type(value)
    assert key == text.split("=", 1)[0].split(".")


def test_parse_override_needs_equals():
    with pytest.raises(ConfigError, match=r"--set 'train.lr': expected KEY=VALUE, e.g. --set train.lr=1e-3"):
        parse_override("train.lr")


def test_apply_overrides_refuses_a_value_as_section():
    with pytest.raises(ConfigError, match=r"'lr' is not a section"):
        apply_overrides({"train": {"lr": 0.1}}, ["train.lr.x=1"])
    assert apply_overrides({"train": {"lr": 0.1}}, ["train.lr=.2"]) == {"train": {"lr": 0.2}}
