#!/usr/bin/env python3
"""relocate-mutants.py - keep the line numbers of tests/mutants.tsv current.

usage: scripts/relocate-mutants.py [--check] [MUTANTS]

A mutant names a line of a library source (docs/testing.md), and
scripts/mutation-test.sh looks for its OLD text within 20 lines of it.
Code added above a mutant moves it away, and the mutant is then reported
"missing" and tests nothing. For each mutant whose OLD is not within 20
lines of its LINE, this finds the commit that added the row, where the
line was right, and follows that line through the file's history to the
working tree (git diff, hunk by hunk). If the line itself was changed
since, it takes the occurrence of OLD nearest the followed position.
Rows whose OLD is gone from the file are listed for a person to rewrite.

--check: change nothing; list the missing rows and exit 1 if there are any.
"""
import re
import subprocess
import sys

NEAR = 20


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def found_near(lines, line, old):
    lo, hi = max(1, line - NEAR), min(len(lines), line + NEAR)
    return any(old in lines[i - 1] for i in range(lo, hi + 1))


def follow(line, diff):
    """Map @line of the old side of a -U0 diff to the new side; None if the
    line itself was changed (the caller searches near the mapped place)."""
    shift = 0
    for m in re.finditer(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", diff, re.M):
        o_start, o_len = int(m.group(1)), int(m.group(2) or 1)
        n_len = int(m.group(4) or 1)
        o_first = o_start if o_len else o_start + 1  # a pure insertion goes after o_start
        if line < o_first:
            break
        if o_len and line < o_first + o_len:
            return None, line + shift
        shift += n_len - o_len
    return line + shift, line + shift


def mutated_line(commit, path, line, old):
    """The line mutation-test.sh changed at @commit: the nearest to @line,
    within NEAR, that holds @old (None if none did)."""
    try:
        lines = git("show", f"{commit}:{path}").split("\n")
    except subprocess.CalledProcessError:
        return None
    for d in range(NEAR + 1):
        for at in (line - d, line + d):
            if 1 <= at <= len(lines) and old in lines[at - 1]:
                return at
    return None


def row_commit(mutants, row):
    """The commit that wrote @row as it is (ID, file, line and text)."""
    key = "\t".join(row.split("\t")[:4])
    out = git("log", "--format=%H", "-S" + key, "--", mutants).split()
    return out[-1] if out else None


def relocate(mutants, check):
    rows = open(mutants).read().split("\n")
    moved, gone, missing = 0, [], []
    cache = {}
    for n, row in enumerate(rows):
        if not row.strip() or row.startswith("#"):
            continue
        f = row.split("\t")
        rid, path, line, old = f[0], f[1], int(f[2]), f[3]
        if path not in cache:
            cache[path] = open(path).read().split("\n")
        lines = cache[path]
        if found_near(lines, line, old):
            continue
        missing.append(rid)
        if check:
            continue
        hits = [i + 1 for i, t in enumerate(lines) if old in t]
        if not hits:
            gone.append(f"{rid} {path}:{line}: '{old}'")
            continue
        guess = line
        commit = row_commit(mutants, row)
        then = mutated_line(commit, path, line, old) if commit else None
        if then:
            exact, guess = follow(then, git("diff", "-U0", commit, "--", path))
            if exact and 1 <= exact <= len(lines) and old in lines[exact - 1]:
                guess = exact
        f[2] = str(min(hits, key=lambda h: abs(h - guess)))
        rows[n] = "\t".join(f)
        moved += 1
    if check:
        for rid in missing:
            print(f"missing: {rid}")
        print(f"{len(missing)} mutants not found near their lines")
        return 1 if missing else 0
    open(mutants, "w").write("\n".join(rows))
    print(f"moved {moved} rows")
    for g in gone:
        print(f"gone (rewrite by hand): {g}")
    return 1 if gone else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--check"]
    sys.exit(relocate(args[0] if args else "tests/mutants.tsv", "--check" in sys.argv[1:]))
