"""Price parcels like the carrier does (4 EUR + 3.7 EUR/kg); the score falls with the relative error."""

import shipping

WEIGHTS = [0.5, 1, 2, 3.5, 5, 8, 10, 12, 15, 20, 25, 30, 0.8, 4, 6, 9, 18, 22]
train = WEIGHTS[0:8]
val = WEIGHTS[8:13]
test = WEIGHTS[13:18]


def run(kilograms):
    return shipping.cost(kilograms)


def feedback(kilograms, price):
    expected = round(4.0 + 3.7 * kilograms, 2)
    error = (price - expected) / expected
    score = max(0.0, 1.0 - abs(error))
    side = "too high" if error > 0 else "too low" if error < 0 else "exact"
    return score, f"{kilograms} kg cost {price} EUR, expected {expected} EUR: {side} by {abs(error):.0%}"
