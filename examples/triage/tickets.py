"""Labelled tickets: the expected queue for each. `main.py` uses them all; `task.py` splits them."""

TRAIN = [
    {'subject': 'Refund please', 'body': 'I was charged twice, can I get my money back?', 'queue': 'billing'},
    {'subject': 'App is broken', 'body': 'It crashes on login. Broken since the update!!', 'queue': 'escalations'},
    {'subject': 'Invoice address', 'body': 'Can you change the address on my invoice?', 'queue': 'billing'},
    {'subject': 'Question', 'body': 'Do you ship to Canada?', 'queue': 'general'},
    {'subject': 'CHARGED TWICE', 'body': 'REFUND NOW, THIS IS FRAUD', 'queue': 'escalations'},
    {'subject': 'Login error', 'body': 'I get error 500 when I log in.', 'queue': 'tech'},
]

VAL = [
    {'subject': 'Broken cable', 'body': 'The cable I got does not work.', 'queue': 'tech'},
    {'subject': 'Refund status', 'body': 'When will my money arrive?', 'queue': 'billing'},
    {'subject': 'Opening hours', 'body': 'Are you open on Sunday?', 'queue': 'general'},
    {'subject': 'Broken and no refund!!', 'body': 'Screen broken, refund refused!', 'queue': 'escalations'},
    {'subject': 'Wrong charge', 'body': 'There is a charge I do not recognise.', 'queue': 'billing'},
    {'subject': 'URGENT', 'body': 'EVERYTHING IS BROKEN', 'queue': 'escalations'},
]

TICKETS = TRAIN + VAL
