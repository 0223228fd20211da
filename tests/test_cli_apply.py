"""`tracec apply`: patches from the patch writer, checked by git and patch(1), applied, refused, reverted."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import black
import pytest
from support import TRACEC

from tracec.cli import main
from tracec.patches.patch_file import PATCH_MAGIC, render_diff, sha256_text, write_patch
from tracec.patches.splice import Change, PatchError, rewrite_source

PATCHES = Path(".tracec") / "patches"

TRIAGE = '''\
import tracec

ESCALATE_AT = tracec.param(1, doc="errors before a human looks")


@tracec.trainable(doc="label a ticket")
def classify(text):
    return "bug" if "crash" in text else "other"
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "app").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    (root / "src" / "app" / "triage.py").write_text(TRIAGE)
    monkeypatch.chdir(root / "src")   # the root is found from any folder below it
    return root


def standard_tools_accept(root: Path, patch: Path) -> None:
    """git apply and GNU patch both accept the patch against the files as they are now."""
    git = subprocess.run(["git", "apply", "--check", str(patch)], cwd=root, capture_output=True, text=True)
    assert git.returncode == 0, git.stderr
    with open(patch, "rb") as fh:
        gnu = subprocess.run(["patch", "-p1", "--dry-run", "--batch", "--force"], cwd=root, stdin=fh,
                             capture_output=True, text=True)
    assert gnu.returncode == 0 and "FAILED" not in gnu.stdout and "fuzz" not in gnu.stdout, gnu.stdout


def make_patch(root: Path, target: str, *changes: Change) -> Path:
    """Patch the file as it is on disk now (the file itself is not changed)."""
    path = root / target
    old = path.read_bytes().decode()
    new = rewrite_source(old, target, changes, black.Mode())
    patch = write_patch(root, target, old, new, keys=[c.key for c in changes], summary="test").path
    standard_tools_accept(root, patch)
    return patch


def patched(source: str, *changes: Change) -> str:
    return rewrite_source(source, "t.py", changes, black.Mode())


def apply(*argv: str) -> int:
    return main(["apply", *argv])


def test_check_then_apply_every_pending_patch_in_order(project: Path, capsys):
    target = project / "src" / "app" / "triage.py"
    threshold = Change("app.triage:ESCALATE_AT", "value", 3, 2)
    body = Change("app.triage:classify", "code", 7, 'def classify(text):\n    return "bug"\n')
    first = make_patch(project, "src/app/triage.py", threshold)
    target.write_text(patched(TRIAGE, threshold))   # the second patch builds on the first
    second = make_patch(project, "src/app/triage.py", body)
    final = patched(TRIAGE, threshold, body).encode()
    target.write_text(TRIAGE)

    assert apply("--check") == 0
    assert capsys.readouterr().out.splitlines() == [
        "0001-triage-ESCALATE_AT.patch: would apply to src/app/triage.py",
        "0002-triage-classify.patch: would apply to src/app/triage.py"]
    assert target.read_text() == TRIAGE and first.exists() and second.exists()

    assert apply() == 0
    assert target.read_bytes() == final
    assert b'ESCALATE_AT = tracec.param(2, doc="errors before a human looks")' in final
    assert sorted(p.name for p in (project / PATCHES / "applied").iterdir()) == [first.name, second.name]
    assert not first.exists() and not second.exists()
    capsys.readouterr()
    assert apply() == 0
    assert capsys.readouterr().out == "no pending patches in .tracec/patches/\n"

    assert apply("--revert", str(first), str(second)) == 0   # undone last first, whatever the order given
    assert capsys.readouterr().out.splitlines() == [
        "0002-triage-classify.patch: reverted src/app/triage.py",
        "0001-triage-ESCALATE_AT.patch: reverted src/app/triage.py"]
    assert target.read_text() == TRIAGE


def test_stale_patch_is_refused_with_one_line_and_nothing_written(project: Path, capsys):
    target = project / "src" / "app" / "triage.py"
    patch = make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    target.write_text(TRIAGE.replace("import tracec\n", "import tracec  # edited by hand\n"))
    edited = target.read_bytes()
    for argv in (["--check"], [], [str(patch)]):
        assert apply(*argv) == 1
        err = capsys.readouterr().err
        assert err == ("tracec apply: error: src/app/triage.py: changed since 0001-triage-ESCALATE_AT.patch was "
                       "made (sha256 differs); rerun tracec optimize for a fresh patch\n")
        assert target.read_bytes() == edited and patch.exists()


def test_a_refusal_stops_the_patches_after_it(project: Path):
    (project / "other.py").write_text("import tracec\nX = tracec.param('a')\n")
    stale = make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    later = make_patch(project, "other.py", Change("other:X", "value", 2, "b"))
    (project / "src" / "app" / "triage.py").write_text(TRIAGE + "# edited\n")
    assert apply() == 1
    assert (project / "other.py").read_text() == "import tracec\nX = tracec.param('a')\n"
    assert stale.exists() and later.exists()


def test_revert_restores_the_file_byte_for_byte(project: Path, capsys):
    target = project / "src" / "app" / "triage.py"
    patch = make_patch(project, "src/app/triage.py", Change("app.triage:classify", "code", 7,
                                                            "def classify(text):\n    return 'other'\n"))
    assert apply() == 0
    assert "return \"other\"" in target.read_text()
    assert apply("--revert") == 2
    assert "--revert needs the PATCH" in capsys.readouterr().err
    assert apply("--revert", "--check", str(patch)) == 0   # its pending name still finds it in applied/
    assert "would revert src/app/triage.py" in capsys.readouterr().out
    assert "return \"other\"" in target.read_text()
    assert apply("--revert", str(patch)) == 0
    assert target.read_text() == TRIAGE
    assert patch.exists() and not (project / PATCHES / "applied" / patch.name).exists()
    assert apply(str(patch)) == 0 and apply("--revert", str(patch)) == 0   # round trip again
    assert target.read_text() == TRIAGE


def test_revert_refuses_a_file_changed_after_applying(project: Path, capsys):
    target = project / "src" / "app" / "triage.py"
    patch = make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    assert apply() == 0
    target.write_text(target.read_text() + "# more\n")
    assert apply("--revert", str(project / PATCHES / "applied" / patch.name)) == 1
    assert "src/app/triage.py: changed since 0001-triage-ESCALATE_AT.patch was patched" in capsys.readouterr().err


def test_already_applied_by_hand_is_not_an_error(project: Path, capsys):
    patch = make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    subprocess.run(["git", "apply", str(patch)], cwd=project, check=True)
    assert apply() == 0
    assert "src/app/triage.py is already patched" in capsys.readouterr().out
    assert (project / PATCHES / "applied" / patch.name).exists()


def test_missing_patch_argument_is_a_usage_error(project: Path, capsys):
    assert apply("nope.patch") == 2
    assert capsys.readouterr().err == "tracec apply: error: nope.patch: no such patch file\n"


def crafted(root: Path, target: str, old: str, new: str, *, diff_target: str | None = None,
            after: str = "") -> Path:
    """A patch file written by hand (not by tracec): header `target`, a diff of old -> new about
    `diff_target` (default: the same path), then `after` appended to the diff."""
    header = [PATCH_MAGIC, f"target: {target}", "keys: x:X", "summary: crafted", f"base-sha256: {sha256_text(old)}",
              f"result-sha256: {sha256_text(new)}", ""]
    path = root / PATCHES / "0001-crafted.patch"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(header) + "\n" + render_diff(old, new, diff_target or target) + after)
                     .encode("utf-8", "surrogateescape"))
    return path


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_never_writes_outside_the_root(project: Path, capsys):
    outside = project.parent / "outside.py"
    outside.write_text("import tracec\nX = tracec.param(1)\n")
    (project / "link.py").symlink_to(outside)
    for target, says in (("../outside.py", "has a '..' component"), ("src/../../outside.py", "has a '..' component"),
                         (str(outside), "is not a path relative to the project root"),
                         ("link.py", "outside the project root")):
        old = outside.read_text()
        patch = crafted(project, target, old, old.replace("(1)", "(2)"))
        assert apply(str(patch)) == 1
        assert says in capsys.readouterr().err
        assert outside.read_text() == old
        patch.unlink()


GIT_CONFIG_HOOK = "[core]\n\tfsmonitor = touch pwned\n"   # `git status` runs it: the reason for the rule


@pytest.mark.parametrize("target", [".git/config", ".GIT/config", ".Git/config", "src/app/../../.git/config",
                                    "src/.git/config", ".git./config", "git~1/config", "link/config"])
def test_a_patch_into_git_s_folder_is_refused_and_nothing_is_written(project: Path, target):
    """A crafted patch that adds a command to .git/config (or to a path a file system may take for .git,
    or reached through a symlink to .git) is refused by the installed command: one line, exit 1."""
    real = project / target.replace("src/app/../../", "").replace("link/", ".git/")
    real.parent.mkdir(parents=True, exist_ok=True)
    if not real.exists():
        real.write_text("[core]\n\tbare = false\n")
    (project / "link").symlink_to(".git")
    old = real.read_text()
    patch = crafted(project, target, old, old + GIT_CONFIG_HOOK)
    before = files_under(project)
    done = subprocess.run([TRACEC, "apply"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert str(patch) in done.stderr and "delete this patch" in done.stderr, done.stderr
    assert files_under(project) == before      # the target, no temp file anywhere, the patch not moved
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=True)
    assert not (project / "pwned").exists()


def test_a_patch_whose_diff_also_edits_git_s_folder_is_refused(project: Path, capsys):
    """The header names a source file, but the diff names .git/config too: `git apply PATCH` would edit
    both, so `tracec apply` refuses the whole patch (and so does `tracec check`)."""
    config = project / ".git" / "config"
    source = TRIAGE.replace("param(1,", "param(2,")
    extra = render_diff(config.read_text(), config.read_text() + GIT_CONFIG_HOOK, ".git/config")
    quoted = extra.replace("a/.git/config", '"a/\\056git/config"').replace("b/.git/config", '"b/\\056git/config"')
    for diff_target, after in ((".git/config", ""), ("src/app/triage.py", "\n" + extra),
                               ("src/app/triage.py", quoted)):
        old = TRIAGE if diff_target != ".git/config" else config.read_text()
        new = source if diff_target != ".git/config" else old + GIT_CONFIG_HOOK
        patch = crafted(project, "src/app/triage.py", old, new, diff_target=diff_target, after=after)
        before = files_under(project)
        assert apply() == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "would write .git/config" in err and "delete this patch" in err, err
        assert files_under(project) == before
        assert main(["check"]) == 1 and "TC401" in capsys.readouterr().out
        patch.unlink()


def test_a_nul_byte_in_the_target_is_refused(project: Path, capsys):
    patch = crafted(project, "src/app/tri\0age.py", TRIAGE, TRIAGE.replace("param(1,", "param(2,"))
    assert apply(str(patch)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a NUL byte" in err and str(patch) in err
    assert patch.exists() and (project / "src" / "app" / "triage.py").read_text() == TRIAGE


def test_the_patch_writer_refuses_those_paths_too(project: Path):
    for target in (".git/config", "../x.py", "a/./b.py", "/etc/passwd"):
        with pytest.raises(PatchError, match="tracec patches only files inside the project root"):
            write_patch(project, target, "a\n", "b\n", keys=["x:X"], summary="")
    assert not (project / PATCHES).exists()


def test_edited_patches_are_refused(project: Path, capsys):
    patch = make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    text = patch.read_text()
    patch.write_text(text.replace("+ESCALATE_AT = tracec.param(2,", "+ESCALATE_AT = tracec.param(9,"))
    assert apply() == 1
    assert "applying it does not give the recorded result; the patch file was edited" in capsys.readouterr().err
    patch.write_text(text.replace("b/src/app/triage.py", "b/src/app/other.py"))
    assert apply() == 1
    assert "its diff is not about its target src/app/triage.py" in capsys.readouterr().err
    patch.write_text(text + "\n+more lines git apply would read as another section\n")
    assert apply() == 1
    assert "text after the diff of src/app/triage.py; regenerate the patch" in capsys.readouterr().err
    assert (project / "src" / "app" / "triage.py").read_text() == TRIAGE


def test_write_is_atomic_and_keeps_the_file_mode(project: Path, monkeypatch):
    target = project / "src" / "app" / "triage.py"
    target.chmod(0o754)
    make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))

    def refuse(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    import tracec.patches.apply
    with monkeypatch.context() as patched:
        patched.setattr(tracec.patches.apply.os, "replace", refuse)
        assert apply() == 123
    assert target.read_text() == TRIAGE
    assert sorted(os.listdir(target.parent)) == ["triage.py"]   # no temp file left behind
    assert apply() == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o754 and "param(2," in target.read_text()


@pytest.mark.parametrize("name, source", [
    ("crlf.py", b"import tracec\r\nX = tracec.param('a')\r\n"),
    ("no_eol.py", b"import tracec\nX = tracec.param('a')"),
    ("form feed.py", b"import tracec\n\x0c\nX = tracec.param('a')  # caf\xc3\xa9\n"),
    ("m\xc3\xb3dulo.py", b"import tracec\nX = tracec.param('a')\n"),
])
def test_odd_files_round_trip_through_git_patch_and_tracec(project: Path, name, source):
    name = name.encode("latin-1").decode("utf-8")
    folder = project / "odd dir"
    folder.mkdir()
    (folder / name).write_bytes(source)
    patch = make_patch(project, f"odd dir/{name}", Change("m:X", "value", 2 + source.count(b"\x0c"), "b"))
    assert apply() == 0
    assert (folder / name).read_bytes() == source.replace(b"'a'", b'"b"')
    assert apply("--revert", str(patch)) == 0
    assert (folder / name).read_bytes() == source


def test_installed_command_exit_status(project: Path):
    make_patch(project, "src/app/triage.py", Change("app.triage:ESCALATE_AT", "value", 3, 2))
    (project / "src" / "app" / "triage.py").write_text(TRIAGE + "\n")
    done = subprocess.run([TRACEC, "apply", "--check"], cwd=project / "src" / "app", capture_output=True,
                          text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "changed since" in done.stderr
