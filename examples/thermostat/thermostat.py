"""A room warmed by a thermostat: a small pure-Python simulation with numeric trainable parameters.

Each minute the controller sets the heater's power from the temperature error (proportional term) and the
error accumulated so far (integral term); the room gains heat from the heater and loses it to the outside.
The bounds written in each param's `doc` ("min 0, max 2") are real constraints: `tracec optimize` refuses
a proposal outside them and tells the model why."""

import tracec

# each doc is one string literal: the optimizer shows a concatenated ("a" "b") doc as no doc at all
GAIN = tracec.param(0.1, doc="proportional gain: heater power per degree of error, min 0, max 2")
INTEGRAL_GAIN = tracec.param(0.0, doc="integral gain: power per degree-minute of summed error, min 0, max 0.01")

HEATER_DEGREES = 2.0   # degrees per minute the heater adds at full power (fixed hardware, not trainable)
LEAK = 0.05            # share of the indoor-outdoor difference lost per minute (the building, not trainable)
MINUTES = 90


@tracec.trace
def heat(target: float, outdoor: float) -> list[float]:
    """The room temperature, minute by minute, starting at the outdoor temperature."""
    temperature, accumulated, history = outdoor, 0.0, []
    for _minute in range(MINUTES):
        error = target - temperature
        accumulated += error
        power = min(max(GAIN * error + INTEGRAL_GAIN * accumulated, 0.0), 1.0)
        temperature += power * HEATER_DEGREES - LEAK * (temperature - outdoor)
        history.append(round(temperature, 2))
    return history


def summary(target: float, history: list[float]) -> dict:
    """What the occupants notice: how far from the target the room is once warm, and how much it overshoots."""
    settled = history[MINUTES // 2:]
    return {"settled_error": sum(abs(target - t) for t in settled) / len(settled),
            "overshoot": max(0.0, max(history) - target), "final": history[-1]}
