"""The one quoting helper: every value comes back from bash exactly as it went in."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.k3s.quoting import UnsafeValueError, assign, sh_quote

TEXT = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=40)


def bash_values(words: list[str]) -> list[str]:
    """Each quoted word printed by bash, NUL-separated: what bash parsed, not what we hoped."""
    script = "printf '%s\\0' " + " ".join(words)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    return out.decode("utf-8", "surrogateescape").split("\0")[:-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=25))
def test_sh_quote_round_trips_arbitrary_text(values: list[str]) -> None:
    assert bash_values([sh_quote(v) for v in values]) == values


@settings(max_examples=40, deadline=None)
@given(st.lists(TEXT, max_size=8), TEXT)
def test_assignments_round_trip_and_run_nothing(items: list[str], scalar: str) -> None:
    script = "\n".join([assign("ONE", scalar), assign("MANY", items),
                        "printf '%s\\0' \"$ONE\" ${MANY[@]+\"${MANY[@]}\"}"])
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    assert out.decode("utf-8", "surrogateescape").split("\0")[:-1] == [scalar, *items]


@pytest.mark.parametrize("value", ["'\x7f", "'a\x01b", "it's\x01", "\x7f'\n\x01"])
def test_bash_internal_quoting_bytes_survive_array_assignments(value: str) -> None:
    # Regression (found by the property test above): bash 5.2 corrupts \x01 and \x7f inside a
    # double-quoted word of an array assignment, e.g. MANY=("'\x7f") gave "'\x01\x7f".
    script = "\n".join([assign("ONE", value), assign("MANY", [value, "x"]),
                        "printf '%s\\0' \"$ONE\" \"${MANY[@]}\""])
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    assert out.decode("utf-8", "surrogateescape").split("\0")[:-1] == [value, value, "x"]


def test_plain_words_stay_readable() -> None:
    assert sh_quote("192.0.2.51") == "192.0.2.51"
    assert sh_quote("v1.34.2+k3s1") == "v1.34.2+k3s1"
    assert sh_quote(300) == "300"
    assert sh_quote("") == "''"
    assert sh_quote("a b") == "'a b'"
    assert sh_quote("it's") == '"it\'s"'
    assert sh_quote("~root") == "'~root'"


def test_unrepresentable_values_are_refused() -> None:
    with pytest.raises(UnsafeValueError):
        sh_quote("a\x00b")
    with pytest.raises(UnsafeValueError):
        sh_quote(True)
    with pytest.raises(UnsafeValueError):
        assign("lower", "x")
    with pytest.raises(UnsafeValueError):
        assign("A;B", "x")
