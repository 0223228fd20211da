"""A CPU-heavy workflow for bench_ray.py: each example integrates a damped oscillator in pure Python (about
0.25 s of one core per example); the trainable step count is read by the traced function, the loop runs
in a plain helper, so recording a run costs what it costs in any workflow that calls a heavy library."""

import tracec

STEPS = tracec.param(600_000, doc="integration steps per simulated second")


def integrate(damping: float, steps: int) -> float:
    dt = 1.0 / steps
    x, v, t, settled = 1.0, 0.0, 0.0, 4.0
    for _ in range(4 * steps):   # always all of them: every example costs the same CPU
        v += (-9.0 * x - damping * v) * dt
        x += v * dt
        t += dt
        if settled == 4.0 and abs(x) < 0.05 and abs(v) < 0.05:
            settled = round(t, 3)
    return settled


@tracec.trace
def settle_time(damping: float) -> float:
    return integrate(damping, STEPS)
