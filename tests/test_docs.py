"""The README's generated sections match the code they document, and its quick start is what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tracec import clidoc
from tracec.optimize.config import SETTINGS, OptimizeConfig, resolve

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(markers: tuple[str, str]) -> str:
    start, end = markers
    return README.split(start, 1)[1].split(end, 1)[0].strip("\n")


def test_readme_cli_reference_is_generated_from_the_parser():
    assert block(clidoc.CLI_MARKERS) == clidoc.cli_reference(), \
        "README's CLI reference is stale: run `python -m tracec.clidoc`"


def test_cli_reference_lists_every_command_and_option():
    from tracec.cli import build_parser

    text = clidoc.cli_reference()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert f"### `tracec {name}`" in text
        for action in sub._actions:
            for flag in action.option_strings:
                assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", text), (name, flag)


def test_cli_reference_does_not_depend_on_the_terminal_width():
    code = "from tracec.clidoc import cli_reference; print(cli_reference())"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"COLUMNS": columns, "PATH": ""}).stdout for columns in ("40", "250")}
    assert len(outputs) == 1
    assert max(len(line) for line in outputs.pop().splitlines()) <= clidoc.WIDTH


def test_readme_settings_table_is_generated_from_the_config_keys():
    assert block(clidoc.SETTINGS_MARKERS) == clidoc.settings_reference()
    rows = [line for line in block(clidoc.SETTINGS_MARKERS).splitlines()[2:]]
    keys = [re.match(r"\| `(\w+)` \|", row).group(1) for row in rows]
    assert keys == list(SETTINGS)


def test_settings_table_defaults_are_the_ones_resolve_uses(tmp_path):
    defaults = resolve(tmp_path, {}, environ={})
    for row in clidoc.settings_reference().splitlines()[2:]:
        key, kind, default = [cell.strip().strip("`") for cell in row.strip("|").split("|")][:3]
        value = getattr(defaults, key)
        shown = "unset" if value is None else str(value).lower() if isinstance(value, bool) else \
            f'"{value}"' if isinstance(value, str) else \
            "[" + ", ".join(f'"{item}"' for item in value) + "]" if isinstance(value, tuple) else str(value)
        assert default == shown, key
        assert kind.split()[0] == SETTINGS[key].metadata["type"].__name__


def test_every_documented_key_is_accepted_in_pyproject(tmp_path):
    samples = {str: '"x"', int: "3", float: "2.5", bool: "false", list: '["x"]'}
    def sample(setting) -> str:   # a key with a fixed set of values gets its first one
        bound = setting.metadata["bound"]
        return f'"{bound[0]}"' if isinstance(bound, tuple) else samples[setting.metadata["type"]]

    table = "".join(f"{key} = {sample(s)}\n" for key, s in SETTINGS.items())
    (tmp_path / "pyproject.toml").write_text("[tool.tracec]\n" + table)
    config = resolve(tmp_path, {}, environ={})
    assert config.steps == 3 and config.cache is False and config.trial_timeout == 2.5
    assert set(SETTINGS) == {f for f in OptimizeConfig.__dataclass_fields__ if f != "model_source"}


def test_quick_start_is_two_commands_and_the_second_is_what_ci_runs():
    section = README.split("## Quick start", 1)[1]
    commands = section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(commands) == 2
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert commands[1] == ci[-1]
    assert "tracec optimize examples/triage/task.py" in commands[0]


def test_clidoc_rewrites_the_marked_blocks_and_check_reports_stale(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n" + "\n".join(clidoc.CLI_MARKERS) + "\n\ntext\n\n"
                      + "\n".join(clidoc.SETTINGS_MARKERS) + "\n")
    command = [sys.executable, "-m", "tracec.clidoc", str(readme)]
    stale = subprocess.run(command + ["--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "stale" in stale.stderr and "### `tracec" not in readme.read_text()
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    text = readme.read_text()
    assert "### `tracec migrate`" in text and "| `trial_timeout` |" in text and "\n\ntext\n\n" in text
    assert subprocess.run(command + ["--check"]).returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "README.md"], "no temp file left behind"


@pytest.mark.parametrize("content", ["# no markers\n", clidoc.CLI_MARKERS[0] + "\nunterminated\n"])
def test_clidoc_without_markers_says_what_to_add(tmp_path, content):
    readme = tmp_path / "README.md"
    readme.write_text(content)
    result = subprocess.run([sys.executable, "-m", "tracec.clidoc", str(readme)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cli-reference:start" in result.stderr and readme.read_text() == content


def test_readme_links_point_at_files_that_exist():
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert "docs/COMPILER.md" in targets and "docs/OPTIMIZER.md" in targets
    # examples/README.md is written together with the examples (issue 4, part 3); until it lands it is
    # the one link allowed to dangle
    pending = {"examples/README.md"} - {t for t in targets if (ROOT / t).exists()}
    for target in targets:
        assert target in pending or (ROOT / target).exists(), target


def test_readme_lists_every_check_rule_code_and_no_other():
    # `tracec check` prints TC### codes; the README's table is where a user looks one up
    emitted = set()
    for module in ("commands/check.py", "commands/check_rules.py"):
        emitted |= set(re.findall(r'"(TC\d{3})"', (ROOT / "tracec" / module).read_text(encoding="utf-8")))
    documented = set(re.findall(r"^\| (TC\d{3}) \|", README, re.MULTILINE))
    assert emitted and documented == emitted
