"""The thermostat as an optimization task: `tracec optimize examples/thermostat/task.py`.

Each example is a day (target and outdoor temperature). The score is 1 minus the settled error plus the
overshoot over 5 degrees (0 when worse); the feedback says both in degrees so the model knows which way to go.
The optimizer's #Memory (the values earlier steps tried and how they scored) is what lets it climb."""

import thermostat

train = [{"target": 21, "outdoor": 5}, {"target": 20, "outdoor": -5}, {"target": 22, "outdoor": 10},
         {"target": 19, "outdoor": 0}, {"target": 23, "outdoor": 15}, {"target": 21, "outdoor": -10}]
val = [{"target": 20, "outdoor": 8}, {"target": 22, "outdoor": -2}, {"target": 18, "outdoor": 3},
       {"target": 24, "outdoor": 12}]


def run(day: dict) -> list[float]:
    return thermostat.heat(day["target"], day["outdoor"])


def feedback(day: dict, history: list[float]) -> tuple[float, str]:
    facts = thermostat.summary(day["target"], history)
    score = max(0.0, 1 - (facts["settled_error"] + facts["overshoot"]) / 5)
    advice = []
    if facts["settled_error"] > 0.3:
        below = facts["final"] < day["target"]
        advice.append(f"the room settles {'below' if below else 'above'} the target")
    if facts["overshoot"] > 0.3:
        advice.append("it overshoots while warming up")
    return score, (f"score {score:.3f}: target {day['target']} C, outdoor {day['outdoor']} C; once warm the room "
                   f"is off by {facts['settled_error']:.2f} C on average, overshoot {facts['overshoot']:.2f} C, "
                   f"final {facts['final']:.1f} C" + (f" ({'; '.join(advice)})" if advice else ""))
