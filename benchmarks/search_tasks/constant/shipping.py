"""Shipping cost: a fixed fee plus a rate per kilogram; the rate is what the optimizer must find."""

import tracec

PER_KG = tracec.param(1.0, doc="euros charged per kilogram, a positive number")


@tracec.trace
def cost(kilograms: float) -> float:
    return round(4.0 + PER_KG * kilograms, 2)
