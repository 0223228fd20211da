"""The greeting agent as an optimization task: `tracec optimize examples/greeting/task.py`.

The feedback is text a person would write when proofreading a card: what is wrong with it, not a number
(the score is only the share of the rules the card follows)."""

import greeting

train = [{"name": "Ada"}, {"name": "Grace"}, {"name": "Linus"}, {"name": "Margaret"}]
val = [{"name": "Alan"}, {"name": "Barbara"}, {"name": "Dennis"}]

MAX_WORDS = 12


def run(colleague: dict) -> str:
    return greeting.greet(colleague["name"])


def feedback(colleague: dict, card: str) -> tuple[float, str]:
    name = colleague["name"]
    problems = []
    if name not in card:
        problems.append(f"the card never says the colleague's name ({name})")
    if len(card.split()) > MAX_WORDS:
        problems.append(f"it has {len(card.split())} words; a card fits at most {MAX_WORDS}")
    if "\n" in card.strip():
        problems.append("it spans several lines; a card has one")
    if not card.rstrip().endswith("!"):
        problems.append("it should end with an exclamation mark")
    score = 1 - len(problems) / 4
    if not problems:
        return score, f"good card: {card!r}"
    return score, f"card {card!r:.160}: " + "; ".join(problems)
