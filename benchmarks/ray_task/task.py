"""bench_ray.py's task: settle times of a damped oscillator, each example ~0.25 s of pure CPU."""

import simulate

train = [0.8, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 3.5]
val = [0.9, 1.1, 1.4, 1.8, 2.2, 2.7, 3.2, 3.8]


def run(damping):
    return simulate.settle_time(damping)


def feedback(damping, seconds):
    return (1.0 if seconds < 4.0 else 0.0), f"damping {damping}: settled after {seconds} s"
