"""The shape of chat text: fenced code blocks and paragraphs, as character spans.

Written with `str.find` and `str.split` rather than regular expressions: both run
over every message of every request, and a regex with a lazy `.*?` costs tens of
microseconds on a pasted file where `find` costs one.
"""

from __future__ import annotations

Span = tuple[int, int]


def fences(text: str) -> list[Span]:
    """Spans of the fenced code blocks, fences included; an unclosed one runs to the end.

    A fence is three or more backticks or tildes at the start of a line (after up to
    three spaces); it closes at a line of the same character, at least as long, and
    nothing else but spaces.
    """
    # One-character searches are memchr: far cheaper than a three-character search.
    marks = [m for m in ("```", "~~~") if m[0] in text and m in text]
    spans: list[Span] = []
    at = 0
    n = len(text)
    while marks and at < n:
        start, fence = _opening(text, at, marks)
        if start < 0:
            break
        line_end = text.find("\n", start)
        if line_end < 0:
            spans.append((start, n))
            break
        end = _closing(text, line_end, fence)
        spans.append((start, end))
        at = end
    return spans


def _opening(text: str, at: int, marks: list[str]) -> tuple[int, str]:
    """The start of the next line opening a fence, and its fence string."""
    best, fence = -1, ""
    for mark in marks:
        start, found = _opening_of(text, at, mark)
        if start >= 0 and (best < 0 or start < best):
            best, fence = start, found
    return best, fence


def _opening_of(text: str, at: int, mark: str) -> tuple[int, str]:
    """`_opening` for one kind of fence."""
    found = text.find(mark, at)
    while found >= 0:
        line_start = text.rfind("\n", 0, found) + 1
        if found - line_start <= 3 and not text[line_start:found].strip(" "):
            line_end = text.find("\n", found)
            line = text[found : line_end if line_end >= 0 else len(text)]
            info = line.lstrip(mark[0])
            # A backtick fence's info string may not hold a backtick (CommonMark).
            if mark[0] == "~" or "`" not in info:
                return line_start, line[: len(line) - len(info)]
        found = text.find(mark, found + 3)
    return -1, ""


def _closing(text: str, at: int, mark: str) -> int:
    """The end of the line closing a fence of `mark`, searched from `at` (a line break)."""
    while True:
        found = text.find(mark, at)
        if found < 0:
            return len(text)
        line_start = text.rfind("\n", 0, found) + 1
        line_end = text.find("\n", found)
        line_end = len(text) if line_end < 0 else line_end
        line = text[line_start:line_end]
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) <= 3 and not stripped.rstrip().strip(mark[0]):
            return line_end
        at = found + len(mark)


def blocks(text: str) -> tuple[list[Span], list[str]]:
    """Paragraphs, and the text of each: split at blank lines, and around every line
    that starts a fence.

    Spans leave out the line breaks around them, so a paragraph matches itself
    wherever it was pasted, whatever the spacing around it. A fence line (opening or
    closing: which does not matter here) is a paragraph of its own, so a block pasted
    right under "Here it is:" still matches the same block pasted elsewhere, and the
    code inside is split at its blank lines, so the unchanged parts of an edited file
    match too.
    """
    spans: list[Span] = []
    pieces: list[str] = []
    at = 0
    for start, end in _fence_lines(text):
        _paragraphs(text, at, start, spans, pieces)
        spans.append((start, end))
        pieces.append(text[start:end])
        at = end
    _paragraphs(text, at, len(text), spans, pieces)
    return spans, pieces


def _fence_lines(text: str) -> list[Span]:
    """Spans of the lines that start with three backticks or tildes."""
    found: list[Span] = []
    for mark in ("```", "~~~"):
        if mark[0] not in text:
            continue
        at = 0 if text.startswith(mark) else text.find("\n" + mark) + 1
        while at > 0 or (at == 0 and text.startswith(mark)):
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            found.append((at, end))
            at = text.find("\n" + mark, end) + 1
            if at == 0:
                break
    return sorted(found)


def _paragraphs(text: str, start: int, end: int, spans: list[Span], pieces: list[str]) -> None:
    at = start
    add_span, add_piece = spans.append, pieces.append
    for piece in text[start:end].split("\n\n"):
        size = len(piece)
        body = piece.strip("\r\n")
        if body is piece:  # most paragraphs: nothing to strip (str.strip returns itself)
            if size and not piece.isspace():
                add_span((at, at + size))
                add_piece(piece)
        elif body and not body.isspace():
            a = at + size - len(piece.lstrip("\r\n"))
            add_span((a, a + len(body)))
            add_piece(body)
        at += size + 2
