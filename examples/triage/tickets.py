"""Labelled tickets: the expected queue for each."""

TICKETS = [
    {'subject': 'Refund please', 'body': 'I was charged twice, I want a refund.', 'queue': 'billing'},
    {'subject': 'App is broken', 'body': 'It crashes on login. Broken since the update!!', 'queue': 'escalations'},
    {'subject': 'Invoice address', 'body': 'Can you change the address on my invoice?', 'queue': 'billing'},
    {'subject': 'Question', 'body': 'Do you ship to Canada?', 'queue': 'general'},
    {'subject': 'CHARGED TWICE', 'body': 'REFUND NOW, THIS IS FRAUD', 'queue': 'escalations'},
    {'subject': 'Login error', 'body': 'I get error 500 when I log in.', 'queue': 'tech'},
]
