"""The specification of `median`. Two of these fail with the shipped (buggy) version ON PURPOSE: they are
what `tracec optimize --pytest examples/code_repair/tests` repairs it from. The repository's own test run
(testpaths = ["tests"]) never collects this folder."""

from stats import median


def test_single_value():
    assert median([7]) == 7


def test_odd_count_already_sorted():
    assert median([1, 2, 3]) == 2


def test_odd_count_unsorted():
    assert median([9, 1, 5]) == 5


def test_even_count_averages_the_middle_pair():
    assert median([4, 1, 3, 2]) == 2.5
