"""`tracec show`: the HTML view of a recorded graph, checked as markup and as pixels in headless Chromium."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracec.runtime as rt
from tracec.commands.show import MAX_DRAWN_NODES, GraphFileError, render_html, write_html

sys.path.insert(0, str(Path(__file__).parent))
from support import load_module  # noqa: E402

SMALL_GRAPH = Path(__file__).parent / "data" / "show_small_graph.json"
# What a recorded value could do if it reached the page as markup: paint the page magenta.
MAGENTA = (255, 0, 255)
PAYLOAD = "<script>document.body.style.background='rgb(255,0,255)'</script>"
IMG_PAYLOAD = "<img src=x onerror=\"document.body.style.background='rgb(255,0,255)'\">"


def small_graph() -> dict:
    return json.loads(SMALL_GRAPH.read_text())


class Page(HTMLParser):
    """The parts of the page a test looks at: elements, node groups with their tooltip, edges."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.nodes: dict[int, dict] = {}     # id -> {"class", "title", "texts", "x"}
        self.edges: list[tuple[str, int, int]] = []
        self.scripts: list[str] = []
        self._node: dict | None = None
        self._depth = 0
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "g" and "data-id" in attrs:
            self._node = {"class": attrs["class"].split(), "title": "", "texts": [], "x": None}
            self.nodes[int(attrs["data-id"])] = self._node
            self._depth = 0
        elif self._node is not None:
            self._depth += tag == "g"
            if tag == "rect" and self._node["x"] is None:
                self._node["x"] = float(attrs["x"])
                self._node["y"] = float(attrs["y"])
        if tag == "path" and "edge" in attrs.get("class", "").split():
            kind = "control" if "control" in attrs["class"].split() else "data"
            self.edges.append((kind, int(attrs["data-from"]), int(attrs["data-to"])))
        self._in = tag if tag in ("title", "text", "tspan", "script") else self._in

    def handle_endtag(self, tag):
        if tag == "g" and self._node is not None:
            if self._depth == 0:
                self._node = None
            self._depth -= 1
        if tag in ("title", "script", "text"):
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._node is not None and self._in == "title":
            self._node["title"] += data
        elif self._node is not None and self._in in ("text", "tspan"):
            self._node["texts"].append(data)


# ---------------------------------------------------------------- markup


def test_every_node_and_every_edge_is_drawn_with_its_kind():
    graph = small_graph()
    page = Page(render_html(graph))
    assert set(page.nodes) == {n["id"] for n in graph["nodes"]}
    expected = {("data", p, n["id"]) for n in graph["nodes"] for p in n["parents"]}
    expected |= {("control", p, n["id"]) for n in graph["nodes"] for p in n["control"]}
    assert sorted(page.edges) == sorted(expected)
    for node in graph["nodes"]:
        assert f"kind-{node['kind']}" in page.nodes[node["id"]]["class"]


def test_data_and_control_edges_look_different_and_the_legend_says_which_is_which():
    text = render_html(small_graph())
    css = text[text.index("<style>"): text.index("</style>")]
    data_rule = css[css.index(".edge.data {"):].split("}")[0]
    control_rule = css[css.index(".edge.control {"):].split("}")[0]
    assert "dasharray" in control_rule and "dasharray" not in data_rule
    assert data_rule.split("stroke:")[1] != control_rule.split("stroke:")[1]
    legend = text[text.index('class="legend"'): text.index("</header>")]
    assert "data edge" in legend and "control edge" in legend and 'class="edge control"' in legend


def test_each_node_shows_code_and_location_and_its_tooltip_has_the_full_value():
    graph = small_graph()
    page = Page(render_html(graph))
    for node in graph["nodes"]:
        drawn = page.nodes[node["id"]]
        visible = " ".join(drawn["texts"])
        assert f"{node['file']}:{node['line']}" in visible
        assert node["code"][:20] in visible
        assert node["value"] in drawn["title"], "hovering must reveal the whole recorded value"
        assert node["code"] in drawn["title"]
    error = page.nodes[6]
    assert "ValueError" in " ".join(error["texts"])
    assert "src/app.py:7 in parse" in error["title"], "the traceback summary belongs in the tooltip"
    assert "trainable" in page.nodes[0]["class"] and "app:PROMPT" in " ".join(page.nodes[0]["texts"])
    assert "output" in page.nodes[9]["class"]


def test_nodes_are_grouped_in_one_lane_per_function_and_every_edge_points_down():
    graph = small_graph()
    page = Page(render_html(graph))
    lane_x: dict[str, set[float]] = {}
    for node in graph["nodes"]:
        lane_x.setdefault(node["function"], set()).add(page.nodes[node["id"]]["x"])
    assert all(len(xs) == 1 for xs in lane_x.values()), lane_x
    assert len({xs.pop() for xs in lane_x.values()}) == len(lane_x), "two functions share a lane"
    for _, src, dst in page.edges:
        assert page.nodes[src]["y"] < page.nodes[dst]["y"]


@pytest.mark.parametrize("field", ["value", "code", "name", "function", "file"])
@pytest.mark.parametrize("payload", [PAYLOAD, IMG_PAYLOAD, '"><svg onload=alert(1)>', "</title></svg><script>x()"])
def test_recorded_text_is_escaped_everywhere(field, payload):
    graph = small_graph()
    graph["nodes"][2][field] = payload
    graph["nodes"][6]["error"]["message"] = payload
    page = Page(render_html(graph, title=payload))
    assert [tag for tag, _ in page.tags if tag in ("script", "img", "iframe", "object")] == ["script"]
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]
    assert "alert" not in "".join(page.scripts) and "255,0,255" not in "".join(page.scripts)
    assert payload in page.nodes[2]["title"], "the user's text survives escaping unchanged"
    assert set(page.nodes) == {n["id"] for n in graph["nodes"]}


def test_the_page_is_self_contained():
    text = render_html(small_graph())
    page = Page(text)
    assert not [tag for tag, _ in page.tags if tag in ("link", "img", "iframe", "object", "embed")]
    assert not [attrs for _, attrs in page.tags if attrs.get("src") or attrs.get("href")]
    assert "http://" not in text and "https://" not in text and "@import" not in text
    assert "<style>" in text and page.scripts, "CSS and JS are inline"


def test_a_huge_graph_is_capped_with_a_note_that_names_errors_not_drawn():
    total = MAX_DRAWN_NODES + 500
    nodes = [{"id": i, "kind": "op", "name": "x", "code": "x = x + 1", "value": str(i), "file": "a.py",
              "line": 2, "function": "a.loop", "parents": [i - 1] if i else [], "control": []}
             for i in range(total)]
    nodes[-1].update(kind="error", name="OverflowError",
                     error={"type": "OverflowError", "message": "too big", "traceback": []})
    text = render_html({"version": 1, "nodes": nodes, "params": [], "outputs": [], "truncated": True})
    page = Page(text)
    assert set(page.nodes) == set(range(MAX_DRAWN_NODES))
    assert f"first {MAX_DRAWN_NODES} of {total} nodes" in text
    assert f"#{total - 1} error OverflowError at a.py:2" in text
    assert "truncated" in text
    assert f"{total} nodes" in text, "the summary counts the whole graph, not only what is drawn"


def test_an_empty_graph_renders_a_page_that_says_so():
    text = render_html({"version": 1, "nodes": [], "params": [], "outputs": []})
    assert "no nodes" in text and Page(text).nodes == {}


def test_a_graph_recorded_by_the_runtime_renders_every_node(tmp_path):
    module = load_module(tmp_path, "show_app", """
        import tracec

        PREFIX = tracec.param("n=")

        @tracec.trace
        def describe(items):
            out = []
            for item in items:
                if item > 9:
                    item = item // 10
                out.append(PREFIX + str(10 // item))
            return out
        """, instrument=True, all_functions=False)
    with pytest.raises(ZeroDivisionError):
        with rt.record() as run:  # the exception leaves the block, so the recording notes where it came from
            assert module.describe([1, 20]) == ["n=10", "n=5"]
            module.describe([3, 0])
    graph = run.to_json()
    page = Page(render_html(graph))
    assert set(page.nodes) == {n["id"] for n in graph["nodes"]}
    kinds = {n["kind"] for n in graph["nodes"]}
    assert {"param", "control", "error", "return"} <= kinds
    assert any(kind == "control" for kind, _, _ in page.edges) and any(k == "data" for k, _, _ in page.edges)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=2)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=2), max_leaves=3)
node_fields = st.fixed_dictionaries(
    {"id": st.integers(0, 30)},
    optional={key: json_values for key in ("kind", "name", "code", "value", "file", "line", "function", "error",
                                           "repeats")}
    | {key: st.lists(st.integers(-2, 40) | json_values, max_size=4) for key in ("parents", "control")})


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(node_fields, max_size=8, unique_by=lambda n: n["id"]),
       extra=st.dictionaries(st.sampled_from(["params", "outputs", "feedback", "truncated"]), json_values))
def test_any_malformed_fields_render_or_fail_with_value_error_and_stay_escaped(nodes, extra):
    graph = {"version": 1, "nodes": nodes, **extra}
    try:
        text = render_html(graph)
    except ValueError:
        return
    page = Page(text)
    assert set(page.nodes) == {n["id"] for n in nodes}
    assert [tag for tag, _ in page.tags if tag == "script"] == ["script"]
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]


# ---------------------------------------------------------------- files and errors


def test_write_html_writes_the_page_and_leaves_no_temporary_files(tmp_path):
    out = tmp_path / "view" / "graph.html"
    write_html(str(SMALL_GRAPH), str(out))
    first = out.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>") and "show_small_graph.json" in first
    write_html(str(SMALL_GRAPH), str(out))  # overwriting an existing view works too
    assert out.read_text(encoding="utf-8") == first
    assert [p.name for p in out.parent.iterdir()] == ["graph.html"]


@pytest.mark.parametrize("content, expected", [
    ("{not json", "invalid JSON"),
    ('{"version": 2, "nodes": []}', "version-1"),
    ('{"version": true, "nodes": []}', "version-1"),
    ('{"nodes": []}', "version-1"),
    ("[1, 2]", "JSON list"),
    ('{"version": 1}', "'nodes'"),
    ('{"version": 1, "nodes": [{"id": 0}, {"id": 0}]}', "nodes[1]"),
    ('{"version": 1, "nodes": [{"kind": "op"}]}', "nodes[0]"),
])
def test_a_file_that_is_not_a_graph_gets_a_one_line_error_naming_it(tmp_path, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "bad.html"
    with pytest.raises(ValueError) as caught:
        write_html(str(bad), str(out))
    message = str(caught.value)
    assert isinstance(caught.value, GraphFileError)
    assert message.startswith(str(bad)) and expected in message and "\n" not in message
    assert not out.exists()


def test_a_missing_or_binary_file_is_reported_the_same_way(tmp_path):
    with pytest.raises(ValueError, match="cannot read graph file"):
        write_html(str(tmp_path / "nope.json"), str(tmp_path / "nope.html"))
    binary = tmp_path / "blob.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8"):
        write_html(str(binary), str(tmp_path / "blob.html"))


# ---------------------------------------------------------------- pixels in a real browser


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "chromium is not installed (run .ci/install-tools.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the screenshot test must run")
    pytest.skip(reason)


def screenshot(html_text: str, folder: Path, name: str, fragment: str = "") -> "Image":
    """Chromium's view of the page; fails on any uncaught script error the browser console reports."""
    page = folder / f"{name}.html"
    page.write_text(html_text, encoding="utf-8")
    png = folder / f"{name}{fragment.replace('#', '-')}.png"
    command = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--enable-logging=stderr", "--v=0", f"--user-data-dir={folder / 'profile'}", f"--screenshot={png}",
               "--window-size=1200,900", page.as_uri() + fragment]
    # Its own session, so a hung browser (say, a page stuck in a dialog) goes down with all its children.
    browser = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, errors = browser.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"chromium did not finish rendering {page.name} within 90 s")
    assert png.exists(), f"chromium wrote no screenshot (exit {browser.returncode}): {errors[-2000:]}"
    console = [line for line in errors.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not console, f"the page's script failed in the browser: {console}"
    return Image(png.read_bytes())


class Image:
    """Just enough PNG decoding for Chromium's screenshots: 8-bit RGB/RGBA, not interlaced."""

    def __init__(self, data: bytes) -> None:
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, chunks = 8, []
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            chunks.append((kind, data[pos + 8:pos + 8 + length]))
            pos += 12 + length
        header = dict(chunks)[b"IHDR"]
        self.width, self.height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
        assert depth == 8 and colour in (2, 6) and interlace == 0, "unsupported PNG layout"
        channels = 3 if colour == 2 else 4
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        stride = self.width * channels
        rows, previous = [], bytes(stride)
        for y in range(self.height):
            start = y * (stride + 1)
            previous = unfilter(raw[start], raw[start + 1:start + 1 + stride], previous, channels)
            rows.append(previous)
        self.pixels = [tuple(row[x:x + 3]) for row in rows for x in range(0, stride, channels)]

    def count(self, test) -> int:
        return sum(1 for p in self.pixels if test(*p))


def unfilter(kind: int, line: bytes, previous: bytes, step: int) -> bytes:
    """Undo one PNG row filter (None, Sub, Up, Average, Paeth)."""
    if kind == 0:
        return line
    if kind == 2:
        return bytes(map(lambda a, b: (a + b) & 255, line, previous))
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - step] if i >= step else 0
        if kind == 1:
            out[i] = (out[i] + left) & 255
        elif kind == 3:
            out[i] = (out[i] + (left + previous[i]) // 2) & 255
        else:
            up, corner = previous[i], previous[i - step] if i >= step else 0
            guess = left + up - corner
            pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
            out[i] = (out[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    return bytes(out)


def is_error_red(r, g, b):
    return r > 170 and g < 90 and b < 90


def is_param_gold(r, g, b):
    return r > 170 and 95 < g < 150 and b < 60


def is_control_purple(r, g, b):
    return 90 < r < 160 and g < 70 and b > 130


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Screenshots of the small graph (plain and opened at a node), of the same graph without errors, and of a
    calibration page where the payload is inserted unescaped."""
    folder = tmp_path_factory.mktemp("show-shots")
    graph = small_graph()
    graph["nodes"][1]["value"] = PAYLOAD
    graph["nodes"][2]["value"] = IMG_PAYLOAD
    healed = copy.deepcopy(graph)
    for node in healed["nodes"]:
        if node["kind"] == "error":
            node["kind"] = "op"
            node.pop("error")
    unescaped = render_html(small_graph()).replace("<h1>", "<h1>" + PAYLOAD, 1)
    return {"graph": screenshot(render_html(graph), folder, "graph"),
            "selected": screenshot(render_html(graph), folder, "graph", fragment="#node-6"),
            "healed": screenshot(render_html(healed), folder, "healed"),
            "injected": screenshot(unescaped, folder, "injected"), "folder": folder}


def test_the_screenshot_shows_a_graph_not_a_blank_page(shots):
    image = shots["graph"]
    assert (image.width, image.height) == (1200, 900)
    background = Counter(image.pixels).most_common(1)[0][0]
    drawn = image.count(lambda *p: p != background) / len(image.pixels)
    assert drawn > 0.25, f"only {drawn:.0%} of the window differs from the background"
    assert len(set(image.pixels)) > 200, "a drawn graph has text and colours, not a few flat areas"
    assert image.count(lambda r, g, b: r + g + b < 200) > 2000, "dark text is visible"


def test_error_nodes_are_red_on_screen(shots):
    with_errors, without = shots["graph"].count(is_error_red), shots["healed"].count(is_error_red)
    # The legend keeps a small red swatch either way; the error boxes add much more red.
    assert with_errors > without + 3000, (with_errors, without)


def test_params_and_control_nodes_have_their_own_colours_on_screen(shots):
    image = shots["graph"]
    assert image.count(is_param_gold) > 1500
    assert image.count(is_control_purple) > 1500


def test_recorded_markup_does_not_run_in_the_browser(shots):
    assert shots["injected"].count(lambda *p: p == MAGENTA) > 100_000, \
        "calibration: the same payload inserted unescaped must paint the page"
    assert shots["graph"].count(lambda *p: p == MAGENTA) == 0


def test_opening_the_page_at_a_node_pins_its_details(shots):
    plain, selected = shots["graph"], shots["selected"]
    # The details panel sits in the bottom-right corner; without a selection that corner is empty canvas.
    corner = [y * plain.width + x for y in range(plain.height - 120, plain.height) for x in range(700, plain.width)]
    changed = sum(1 for i in corner if plain.pixels[i] != selected.pixels[i])
    assert changed > 5000, f"only {changed} pixels of the corner changed when node 6 was selected"
    assert selected.count(lambda r, g, b: r + g + b < 60) > plain.count(lambda r, g, b: r + g + b < 60), \
        "the selected node gets a black outline"
