"""A training loss that stops being finite: the run ends failed at that step (train.py checks it
without a CPU-GPU sync per step; trainer/README.md says what the run folder then holds)."""

from __future__ import annotations

import math


def nonfinite_name(value: float) -> str:
    """How the events schema names a non-finite number: "NaN", "Infinity" or "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


class Diverged(Exception):
    """The training loss of optimizer step ``step`` (1-based, as train events number steps) was
    not finite. The run ends failed at once: no train event or checkpoint for that step or after.

    Args:
        step (int): the first step whose loss was not finite.
        value (float): that loss (NaN, inf or -inf).
    """

    def __init__(self, step: int, value: float):
        self.step, self.value = step, nonfinite_name(value)
        super().__init__(f"loss diverged ({self.value}) at step {step}")

    def payload(self) -> dict:
        """run_finished's ``diverged`` field."""
        return {"step": self.step, "value": self.value}
