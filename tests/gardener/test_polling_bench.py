"""The polling targets of issue 10, measured by the benchmark itself against the fixed 15 s poll."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gardener_polling.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gardener_polling", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gardener_polling", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_adaptive_polling_needs_at_most_0_4x_the_calls_with_p95_detection_within_5s(
        capsys: pytest.CaptureFixture[str]) -> None:
    (fixed_calls, _, _, _), (calls, _, p95, _) = _bench().run(12, "linear-ish")
    assert calls <= 0.4 * fixed_calls and p95 <= 5.0


def test_a_misleading_progress_rate_still_beats_the_fixed_poll(capsys: pytest.CaptureFixture[str]) -> None:
    (fixed_calls, _, fixed_p95, _), (calls, _, p95, _) = _bench().run(12, "front-loaded")
    assert calls < fixed_calls and p95 <= 5.0 < fixed_p95
