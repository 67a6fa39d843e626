"""A command line split into words as bash and zsh read them, and words quoted so that a shell
inserts them as themselves: what the completion handlers in `shellscripts` need.

Bash hands its completion function the words split at COMP_WORDBREAKS (`=` and `:` among them), so
`--audience=https://ma` arrives as five words; the script passes the line up to the cursor
instead, split here. Bash then replaces only the text after the last word break the user typed
(the function's `$2`): `//ma` there, so the candidate must be written from that point on, quoted
for the quotes the word has open at that point.

Imported on every TAB: no imports beyond the standard library's smallest.
"""

from __future__ import annotations

from typing import NamedTuple

_ENDS_A_WORD = frozenset(" \t\n;&|<>()")  # unquoted, these end a word (blanks and the operators)
_ESCAPED_IN_DOUBLE_QUOTES = frozenset('$`"\\\n')  # a backslash escapes only these inside "..."
# what bash's `printf %q` escapes with a backslash (and `~` or `#` at the start of a word)
_SPECIAL = frozenset(" \t!\"$&'()*,;<>?[\\]^`{|}")
_ANSI_C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "?": "?", "a": "\a", "b": "\b",
                   "e": "\x1b", "E": "\x1b", "f": "\f", "v": "\v"}  # inside $'...' (numeric escapes not read)


class Word(NamedTuple):
    raw: str  # as typed
    value: str  # what the shell passes to the command
    quote: str  # the quote still open at its end: "'", '"', "$'" or ""


class Line(NamedTuple):
    args: list[str]  # the words before the one being completed, program name excluded
    current: Word  # the word being completed ("" after a blank)


def read_word(raw: str) -> Word:
    """One word (no unquoted blanks in it) as the shell reads it, possibly cut short by the cursor."""
    return _words(raw)[-1] if raw else Word("", "", "")


def split(line: str) -> Line:
    """The line up to the cursor: the words before the current one, and the current one."""
    words = _words(line)
    return Line([w.value for w in words[1:-1]], words[-1])


def _words(line: str) -> list[Word]:
    """Every word of `line`; the last is empty when the line ends outside a word."""
    words: list[Word] = []
    start: int | None = None  # where the word being read began in `line`
    value: list[str] = []
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if start is None:
            if c in _ENDS_A_WORD:
                i += 1
                continue
            start = i
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                value.append(c)
        elif quote == "$'":
            if c == "'":
                quote = ""
            elif c == "\\" and i + 1 < len(line):
                i += 1
                value.append(_ANSI_C_ESCAPES.get(line[i], "\\" + line[i]))
            elif c != "\\":
                value.append(c)
        elif quote == '"':
            if c == '"':
                quote = ""
            elif c == "\\" and i + 1 < len(line) and line[i + 1] in _ESCAPED_IN_DOUBLE_QUOTES:
                i += 1
                if line[i] != "\n":  # backslash-newline continues the line
                    value.append(line[i])
            elif c != "\\" or i + 1 < len(line):  # a backslash the cursor cut short escapes nothing yet
                value.append(c)
        elif c in "'\"":
            quote = c
        elif c == "$" and line.startswith("'", i + 1):
            quote = "$'"
            i += 1
        elif c == "\\":
            i += 1
            if i < len(line) and line[i] != "\n":
                value.append(line[i])
        elif c in _ENDS_A_WORD:
            words.append(Word(line[start:i], "".join(value), ""))
            start, value = None, []
        else:
            value.append(c)
        i += 1
    if start is None:
        words.append(Word("", "", ""))
    else:
        words.append(Word(line[start:], "".join(value), quote))
    return words


def quote(text: str, open_quote: str = "", word_start: bool = True) -> str:
    """`text` written so that, typed where bash inserts a candidate (at the start of the word, after
    a word break, or just after an open `open_quote`: "'", '"' or "$'"), the shell reads it as
    `text`. A character the open quote cannot hold is written outside it (the quote closed before
    it and opened again after it); a newline (which the scripts' one-candidate-a-line answer
    cannot carry) is written $'\\n'."""
    out: list[str] = []
    for i, c in enumerate(text):
        outside = None
        if open_quote == "$'":
            out.append({"\\": "\\\\", "'": "\\'", "\n": "\\n"}.get(c, c))
        elif c == "\n":
            outside = "$'\\n'"
        elif open_quote == "'":
            if c == "'":
                outside = "\\'"
            else:
                out.append(c)
        elif open_quote == '"':
            if c == "!":  # history expansion: a backslash before `!` inside "..." would stay in the word
                outside = "\\!"
            else:
                out.append("\\" + c if c in '$`"\\' else c)
        elif c in _SPECIAL or (c in "~#" and i == 0 and word_start):
            out.append("\\" + c)
        else:
            out.append(c)
        if outside is not None:
            out.append(f"{open_quote[-1:]}{outside}{open_quote}")
    quoted = "".join(out)
    # Bash closes the open quote after a single candidate, unless the line already ends with its
    # character (`it'\''`, `say \"hi\"`, or the quote itself when the candidate adds nothing after
    # it): such a candidate closes the quote itself.
    closing = open_quote[-1:]
    if closing and (quoted.endswith(closing) or not quoted):
        quoted += closing
    return quoted


def option_value_start(word: str) -> int:
    """Where, in the value of the word being completed, the part click completes starts: after the
    `=` of `--opt=value` (or a lone `=`), as click's completion splits it; else 0. Not after the
    `=` of a short option: msi reads `-g=rg1` as the value `=rg1` (click's parser takes the rest of
    the word), so no value is offered there that would give a line msi refuses."""
    if word == "=":
        return 1
    if word.startswith("--") and "=" in word:
        return word.index("=") + 1
    return 0


def replacements(current: Word, replaced: str, candidates: list[str]) -> list[str]:
    """What bash must insert for each candidate, which completes `current.value` from
    option_value_start on, given that bash replaces only `replaced` (the end of `current.raw`
    after the last word break the user typed, or after an open quote). Candidates that do not
    continue the part of the word bash keeps are left out."""
    if not current.raw.endswith(replaced):  # bash read the word otherwise: each candidate replaces it
        return [quote(c) for c in candidates]
    kept = read_word(current.raw[: len(current.raw) - len(replaced)])
    head = current.value[: option_value_start(current.value)]
    out = []
    for candidate in candidates:
        whole = head + candidate
        if whole.startswith(kept.value):
            out.append(quote(whole[len(kept.value) :], kept.quote, word_start=not kept.raw))
    return out


__all__ = ["Line", "Word", "option_value_start", "quote", "read_word", "replacements", "split"]
