"""`tracec migrate PATH... [--diff]`: rewrite Trace annotations as tracec ones, one reviewable patch per
changed file under .tracec/patches/ (applied with `tracec apply`), or the diff on stdout with --diff.
Source files are never touched here. The rewriting itself is tracec.transforms.migrate.

Exit status: 0 everything migrated (or nothing to do), 1 something was left unchanged (each reported as
`path:line:col: message`) or a file could not be parsed, 2 usage (a path that does not exist or lies
outside the project).
"""

from __future__ import annotations

import argparse
import sys

from tracec.errors import EXIT_FINDINGS, EXIT_OK


def main(args: argparse.Namespace) -> int:
    from tracec.patches.apply import pending_changes
    from tracec.patches.patch_file import render_diff, sha256_text, write_patch
    from tracec.project import discover, find_project_root, module_name_for_file
    from tracec.transforms.migrate import migrate_source

    root = find_project_root()
    files = discover(args.paths, root, root / ".tracec" / "build")
    pending = pending_changes(root)
    changed = problems = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            source = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            print(f"{rel}:1:1: not UTF-8 ({exc.reason}); convert the file to UTF-8", file=sys.stderr)
            problems += 1
            continue
        result = migrate_source(source, path=rel)
        for problem in (result.error, *result.problems):
            if problem is not None:
                print(problem, file=sys.stderr)
                problems += 1
        if not result.changed:
            continue
        changed += 1
        if args.diff:
            sys.stdout.write(render_diff(source, result.code, rel))
            continue
        if (rel, sha256_text(source), sha256_text(result.code)) in pending:
            print(f"{rel}: the same migration is already waiting in .tracec/patches/")
            continue
        module = module_name_for_file(path)
        patch = write_patch(root, rel, source, result.code, keys=[f"{module}:{name}" for name in result.migrated],
                            summary=f"tracec migrate: {', '.join(result.migrated) or 'imports'} "
                                    "rewritten as tracec annotations")
        print(patch.path.relative_to(root).as_posix())
    what = "diff printed" if args.diff else "review the patches, then `tracec apply`"
    print(f"tracec migrate: {len(files)} file(s), {changed} changed, {problems} left for you"
          + (f"; {what}" if changed else ""), file=sys.stderr)
    return EXIT_FINDINGS if problems else EXIT_OK
