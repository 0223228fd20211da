"""Escalate messages of more than 8 words, answer shorter ones directly."""

import replies

MESSAGES = [
    "My order is late", "The parcel arrived broken and the box was open and wet inside sadly",
    "Where is my refund", "I have written four times already and nobody answers my questions at all",
    "Wrong size sent", "Your courier left the package in the rain and now everything inside is ruined",
    "Cancel my order please", "I want to speak to a manager about how rudely I was treated by your driver",
    "Thanks a lot", "The invoice lists items I never ordered and charges me twice for the same thing",
    "Change my address", "After the update my account shows someone else's orders and address details",
    "Package missing", "I was promised a call back yesterday and still nobody has called me back today",
    "Need a receipt", "The replacement you sent is also broken in exactly the same way as the first",
]
train = MESSAGES[0:8]
val = MESSAGES[8:12]
test = MESSAGES[12:16]


def run(message):
    return replies.answer(message)


def feedback(message, reply):
    long = len(message.split()) > 8
    expected = replies.ESCALATION if long else replies.SHORT_REPLY
    if reply == expected:
        return 1.0, "correct"
    why = "it is long (more than 8 words) and must be escalated" if long else "it is short and must not be escalated"
    return 0.0, f"wrong reply to a {len(message.split())}-word message: {why}"
