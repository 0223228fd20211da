"""Classify support tickets; the prompt (RULES) is what the optimizer may change."""

import rules

TICKETS = [
    ("I was charged twice on my invoice", "billing"), ("Refund my last payment please", "billing"),
    ("The app crashes when I open settings", "bug"), ("Error 500 when saving a file", "bug"),
    ("I cannot log in to my account", "account"), ("Please reset my password", "account"),
    ("What are your opening hours?", "other"), ("Thanks for the great service", "other"),
    ("My credit card was billed the wrong amount", "billing"), ("The page freezes and shows an error", "bug"),
    ("How do I change my username?", "account"), ("Do you ship to Canada?", "other"),
    ("Where is the receipt for my payment?", "billing"), ("Button does nothing, looks like a bug", "bug"),
    ("My login link expired", "account"), ("Can I talk to a human?", "other"),
    ("Why was I charged a late fee?", "billing"), ("The export crashes with a traceback", "bug"),
    ("Two-factor code never arrives for my account", "account"), ("Nice product, keep going", "other"),
    ("Please send a refund to my card", "billing"), ("Uploading images gives an error", "bug"),
    ("Delete my account and data", "account"), ("Is there a student discount?", "other"),
]
train = TICKETS[0:8] + TICKETS[8:12]
val = TICKETS[12:18]
test = TICKETS[18:24]


def run(ticket):
    return rules.classify(ticket[0])


def feedback(ticket, label):
    if label == ticket[1]:
        return 1.0, f"correct: {label}"
    return 0.0, f"wrong: labelled {label!r} but this ticket is {ticket[1]!r}: {ticket[0]!r}"
