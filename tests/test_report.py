"""`tracec report`: the HTML page of an optimize run, from the run's folder alone. One real search (the
merge scenario of test_search) is reported; the page is read as text and looked at in headless Chromium."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest
from support import TRACEC
from test_search import by_proposal, make_project, optimize, suggestion
from test_show import screenshot


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    from llm_server import ScriptedServer

    root = make_project(tmp_path_factory.mktemp("report"))
    # the second proposal's value is markup: the page must show it, not render it
    with ScriptedServer(by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="<b>bold</b>!"))) as server:
        result = optimize(root, server, "--steps", "3")
    assert result.returncode == 0, result.stderr
    written = subprocess.run([TRACEC, "report"], cwd=root, capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    path = root / written.stdout.strip()
    return root, path, path.read_text(encoding="utf-8")


def test_the_report_is_written_in_the_run_folder_and_is_self_contained(reported):
    root, path, page = reported
    (run,) = (root / ".tracec" / "runs").iterdir()
    assert path == run / "report.html"
    assert "<script" not in page and not re.search(r"""(src|href)=["']?https?:""", page)   # nothing fetched


def test_the_candidate_tree_shows_each_decision_and_its_reason(reported):
    _, _, page = reported
    assert page.count('class="node"') == 4                     # baseline, two children, their merge
    assert "merge of #1 and #2" in page
    assert "kept in the pool" in page and "★ best" in page
    assert "val 1.000" in page and "val 0.500" in page


def test_markup_in_a_proposed_value_is_shown_escaped(reported):
    _, _, page = reported
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;!" in page


def test_the_front_and_the_diff_to_the_best_are_on_the_page(reported):
    _, _, page = reported
    assert "1 candidate(s) on the front" in page               # the merge dominates every other member
    assert '<span class="add">+GREETING = tracec.param(&quot;Hello&quot;' in page
    assert '<span class="del">-GREETING = tracec.param(&quot;Hi&quot;' in page


def test_an_unknown_run_is_a_one_line_usage_error(reported):
    root, _, _ = reported
    result = subprocess.run([TRACEC, "report", "nope"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no run 'nope'" in result.stderr


def test_in_a_browser_the_report_shows_curves_badges_and_the_diff(reported, tmp_path):
    _, _, page = reported
    image = screenshot(page, tmp_path, "report")
    background = Counter(image.pixels).most_common(1)[0][0]
    assert image.count(lambda *p: p != background) / len(image.pixels) > 0.05, "the page is nearly blank"
    curve_blue = image.count(lambda r, g, b: r < 60 and 80 < g < 130 and b > 170)
    kept_green = image.count(lambda r, g, b: 30 < r < 70 and 100 < g < 150 and 30 < b < 70)
    assert curve_blue > 300, f"the best-score curves are not drawn ({curve_blue} blue pixels)"
    assert kept_green > 150, f"the 'kept in the pool' badges are not visible ({kept_green} green pixels)"
