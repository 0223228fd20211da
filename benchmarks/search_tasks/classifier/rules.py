"""A ticket classifier driven by a prompt: RULES is free text, one `label: keyword, keyword` line per label,
read by a fixed interpreter (standing in for a model that follows instructions literally)."""

import tracec

RULES = tracec.param("billing: invoice\nbug: crash\nother: hello",
                     doc="one line per label, 'label: keyword, keyword, ...'; the first label whose keyword "
                     "appears in the ticket wins; labels are billing, bug, account, other")


@tracec.trace
def classify(ticket: str) -> str:
    words = ticket.lower()
    for line in RULES.splitlines():
        label, _, keywords = line.partition(":")
        if any(k.strip() and k.strip().lower() in words for k in keywords.split(",")):
            return label.strip()
    return "other"
