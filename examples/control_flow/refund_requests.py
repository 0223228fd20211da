"""Labelled refund requests: what the finance team decided for each (they review anything over 100 euros).
`main.py` uses them all; `task.py` trains on TRAIN and keeps the best on VAL."""

TRAIN = [
    {"id": "R-101", "amount": 12.5, "expected": "approve"},
    {"id": "R-102", "amount": 480.0, "expected": "review"},
    {"id": "R-103", "amount": 64.0, "expected": "approve"},
    {"id": "R-104", "amount": 150.0, "expected": "review"},
    {"id": "R-105", "amount": 99.0, "expected": "approve"},
    {"id": "R-106", "amount": 320.0, "expected": "review"},
    {"id": "R-107", "amount": 900.0, "expected": "review"},
    {"id": "R-108", "amount": 35.0, "expected": "approve"},
]

VAL = [
    {"id": "R-201", "amount": 8.0, "expected": "approve"},
    {"id": "R-202", "amount": 210.0, "expected": "review"},
    {"id": "R-203", "amount": 75.0, "expected": "approve"},
    {"id": "R-204", "amount": 450.0, "expected": "review"},
    {"id": "R-205", "amount": 130.0, "expected": "review"},
    {"id": "R-206", "amount": 1500.0, "expected": "review"},
]

REQUESTS = TRAIN + VAL
