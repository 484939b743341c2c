"""Module regexes from a config (``lora.target_modules``, ``spectra.modules``) that could hang.

Python's ``re`` and V8 both backtrack: a group that repeats without bound and itself holds a
repetition or alternatives (``([\\w.]+)+Z``, ``(\\w|[a-z])+``) tries exponentially many ways to
split a module name before it fails, for hours on a 31-character name. PEFT matches the pattern
against every module, so such a config would hang the run at start, and the extension's lint
would hang the editor. Both refuse it instead, by reading the pattern, never by running it.
src/core/modulePatterns.ts is the same scan; trainer/tests/fixtures/module_patterns.json holds the
cases both test suites check.
"""

from __future__ import annotations

import re

REGEX_CHARS = set("*+?[](){}|^$\\")
_COUNTED = re.compile(r"\{\d*,\d*\}")  # {n,} and {n,m}: a repetition; {n} is a fixed count


def _repeat_length(pattern: str, at: int) -> int:
    """The length of an unbounded or ranged quantifier at ``at`` (with a lazy or possessive
    suffix), 0 if none."""
    if at < len(pattern) and pattern[at] in "*+":
        return 2 if at + 1 < len(pattern) and pattern[at + 1] in "?+" else 1
    counted = _COUNTED.match(pattern, at)
    return counted.end() - at if counted else 0


def _class_end(pattern: str, at: int) -> int:
    """The index after the character class that opens at ``at`` (a leading ``]`` is a literal)."""
    i = at + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def backtracking_group(pattern: str) -> str | None:
    """The first group that repeats and holds a repetition or alternatives (the text of the group
    and its quantifier), or None. Conservative: ``(\\.\\w+)+`` is refused although its dots make
    it safe; a module pattern never needs a repeated group."""
    open_groups: list[list] = []  # [start index, holds a repetition or alternatives]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
        elif c == "[":
            i = _class_end(pattern, i)
        elif c == "(":
            open_groups.append([i, False])
            i += 1
        elif c == ")":
            if not open_groups:  # unbalanced: the regex compiler reports it
                i += 1
                continue
            start, risky = open_groups.pop()
            repeat = _repeat_length(pattern, i + 1)
            if repeat and risky:
                return pattern[start:i + 1 + repeat]
            if open_groups:
                open_groups[-1][1] = open_groups[-1][1] or risky or repeat > 0
            i += 1 + repeat
        else:
            repeat = _repeat_length(pattern, i)
            if (repeat or c == "|") and open_groups:
                open_groups[-1][1] = True
            i += max(repeat, 1)
    return None


def pattern_problem(pattern: str) -> str | None:
    """Why a module name or regex from a config cannot be used, or None. A plain name (no regex
    characters) is matched as a suffix and is always usable."""
    if not REGEX_CHARS & set(pattern):
        return None
    group = backtracking_group(pattern)
    if group is not None:
        return (f"'{group}' repeats a group that itself repeats or has alternatives, which can take "
                "exponential time to match; list the module names, or write the pattern without it")
    try:
        re.compile(pattern)
    except re.error as e:
        return f"'{pattern}' is not a valid regular expression: {e}"
    return None
