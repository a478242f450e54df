"""The `whitespace` step: runs of spaces and tabs, and long gaps of blank lines, in prose.

Only prose changes. Fenced code blocks are copied as they are, and so is any
paragraph in which a line starts with a space or a tab (indented code, YAML, nested
lists, anything whose indentation may mean something) or in which two lines
line up a column with runs of spaces (tables, aligned logs). Inline code spans keep
their spacing. In prose, a run of two or more spaces or tabs between words becomes
one space, spaces and tabs at the end of a line go, and three or more blank lines become one.
Tool results are machine output and are never touched.
"""

from __future__ import annotations

import re

from aicp.compress.forms import RESULT, read, replaced
from aicp.compress.markdown import fences
from aicp.compress.memo import remembered
from aicp.compress.work import Work

_SPLIT = re.compile(r"(\n(?:[ \t]*\n)+)")
# An inline code span (kept), a run between two non-space characters, trailing spaces.
_RUNS = re.compile(
    r"(?P<code>(`+)[^`\n]*?\2)|(?<=\S)[ \t]{2,}(?=\S)|(?P<trail>[ \t]+$)", re.MULTILINE
)
_GAP = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_MIN_GAP = 4  # line breaks in three blank lines


def normalise_message(work: Work, i: int) -> bool:
    """Normalise message `i` of the work; whether it changed."""
    message = work.messages[i]
    content = message.get("content")
    table = work.counting.texts.normalised
    if type(content) is str:  # most messages: one text, whose path is known
        if work.kinds[i] == RESULT:
            return False
        fixed = remembered(table, content, _changed)
        if fixed is None:
            return False
        work.set_message(i, {**message, "content": fixed})
        return True
    new = message
    for path in work.form.text_paths(message, results=False):
        text = read(new, path)
        fixed = remembered(table, text, _changed)
        if fixed is not None:
            new = replaced(new, path, fixed)
    if new is message:
        return False
    work.set_message(i, new)
    return True


def normalise_top(work: Work) -> int:
    """Normalise the system prompt kept outside the messages; the texts changed."""
    changed = 0
    table = work.counting.texts.normalised
    for path in work.form.system_paths(work.top):
        fixed = remembered(table, read(work.top, path), _changed)
        if fixed is not None:
            work.set_top(path, fixed)
            changed += 1
    return changed


def _changed(text: str) -> str | None:
    """`normalise`, or None when it leaves the text as it is."""
    fixed = normalise(text)
    return None if fixed is text else fixed


def normalise(text: str) -> str:
    """`text` with its prose whitespace normalised (the same object when nothing changes)."""
    if not _candidate(text):
        return text
    out: list[str] = []
    at = 0
    changed = False
    for start, end in [*fences(text), (len(text), len(text))]:
        segment = text[at:start]
        fixed = _outside(segment)
        changed = changed or fixed != segment
        out += [fixed, text[start:end]]
        at = end
    return "".join(out) if changed else text


def _candidate(text: str) -> bool:
    return "\t" in text or "  " in text or " \n" in text or "\n\n\n\n" in text


def _outside(segment: str) -> str:
    """Text between fenced blocks: paragraphs at even indexes, blank-line gaps at odd."""
    if not _candidate(segment):
        return segment
    parts = _SPLIT.split(segment)
    prose = [_is_prose(p) for p in parts[::2]]
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if prose[i // 2]:
                parts[i] = _RUNS.sub(_run, part)
        elif prose[i // 2] and prose[i // 2 + 1]:
            breaks = part.count("\n")
            parts[i] = "\n\n" if breaks >= _MIN_GAP else "\n" * breaks
    return "".join(parts)


def _is_prose(paragraph: str) -> bool:
    """No indented line, and no column that two lines line up with runs of spaces."""
    if paragraph[:1] in (" ", "\t") or "\n " in paragraph or "\n\t" in paragraph:
        return bool(paragraph) and paragraph.isspace()
    if "  " not in paragraph and "\t" not in paragraph:
        return True
    columns: set[int] = set()
    for line in paragraph.split("\n"):
        ends = {m.end() for m in _GAP.finditer(line)}
        if ends & columns:
            return False
        columns |= ends
    return True


def _run(match: re.Match[str]) -> str:
    if match.group("code"):
        return match.group(0)
    return "" if match.group("trail") is not None else " "
