"""The words of a command line being completed, and candidates quoted for where bash inserts them
(msi_cli.cli.shellwords): bash and zsh hand `msi` the line; `msi` answers with what to insert."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import examples
from msi_cli.cli.shellwords import Word, option_value_start, quote, read_word, replacements, split

OPEN_QUOTES = ("", "'", '"', "$'")
NASTY = ["plain", "Contoso Ltd", "back\\slash", "dollar$sign", "it's", 'say "hi"', "semi;colon", "Ops:East",
         "team(a)", "a!b", "end!", "end'", 'end"', "end\\", "~home", "#hash", "tab\there", "new\nline", "`tick`", "*?[g]",
         "https://management.azure.com/", "Caf\u00e9 \u20ac", ""]


def test_split_reads_quotes_and_escapes_as_the_shell_does():
    line = split("msi --state=/tmp/s.toml show -g 'rg 1' \"a\\\"b\" c\\ d x$'y\\'z' --audience=https://ma")
    assert line.args == ["--state=/tmp/s.toml", "show", "-g", "rg 1", 'a"b', "c d", "xy'z"]
    assert line.current == Word("--audience=https://ma", "--audience=https://ma", "")


def test_the_current_word_may_be_empty_or_cut_short():
    assert split("msi show ").current == Word("", "", "")
    assert split("msi show ").args == ["show"]
    assert split("msi x --tenant 'Con").current == Word("'Con", "Con", "'")
    assert split('msi x --tenant "Con\\"').current == Word('"Con\\"', 'Con"', '"')
    assert split("msi x --tenant Contoso\\ ").current == Word("Contoso\\ ", "Contoso ", "")
    assert split("msi x --tenant a\\").current == Word("a\\", "a", "")  # the escape not typed yet
    assert split("msi x --tenant $'it\\'").current == Word("$'it\\'", "it'", "$'")


def test_option_value_start_splits_as_click_does():
    assert option_value_start("--audience=https://ma") == len("--audience=")
    assert option_value_start("-g=rg") == 0  # msi reads it as the value "=rg": nothing is offered after it
    assert option_value_start("=") == 1
    assert option_value_start("web1") == 0
    assert option_value_start("a=b") == 0  # not an option: the whole word is the value


@settings(max_examples=examples(300), deadline=None)
@given(text=st.text(), open_quote=st.sampled_from(OPEN_QUOTES))
def test_a_quoted_candidate_reads_back_as_itself(text, open_quote):
    written = open_quote + quote(text, open_quote)
    assert read_word(written).value == text
    assert "\n" not in written  # one candidate a line


@pytest.mark.parametrize(
    ("raw", "replaced", "candidates", "inserted"),
    [
        # bash replaces what follows the last `=` or `:` typed: the candidate from there on (the
        # candidates complete the value after `--opt=`, as click splits it)
        ("--audience=https://ma", "//ma", ["https://management.azure.com"], ["//management.azure.com"]),
        ("--audience=", "", ["https://vault.azure.net"], ["https://vault.azure.net"]),
        ("https://ma", "//ma", ["https://management.azure.com"], ["//management.azure.com"]),
        ("--tenant=Ops:", "", ["Ops:East", "Opsx"], ["East"]),  # one the kept part rules out is left out
        ("-g=r", "r", ["rg1"], []),  # msi would read `-g=rg1` as the group "=rg1"
        ("https\\://ma", "https\\://ma", ["https://management.azure.com"], ["https://management.azure.com"]),
        # inside the quote the user opened, quoted for it
        ("'Con", "Con", ["Contoso Ltd"], ["Contoso Ltd"]),
        ("--tenant='it", "it", ["it's"], ["it'\\''s"]),
        ('"do', "do", ["dollar$sign"], ["dollar\\$sign"]),
        ('"sa', "sa", ['say "hi"'], ['say \\"hi\\""']),  # ends with the quote's character: closed here
        ("'Con'to", "'Con'to", ["Contoso Ltd"], ["Contoso\\ Ltd"]),
        # no quote: escaped
        ("b", "b", ["back\\slash", "team(a)"], ["back\\\\slash", "team\\(a\\)"]),
        # a word this module reads otherwise than bash: the candidate replaces the word, escaped
        ("x", "y", ["Contoso Ltd"], ["Contoso\\ Ltd"]),
    ],
)
def test_replacements(raw, replaced, candidates, inserted):
    assert replacements(read_word(raw), replaced, candidates) == inserted


@settings(max_examples=examples(300), deadline=None)
@given(name=st.text(), typed=st.integers(0, 12), open_quote=st.sampled_from(OPEN_QUOTES),
       option=st.sampled_from(["", "--tenant="]), start=st.sampled_from(["", ":", "x:", "x=", "x:=y", "a b"]))
def test_the_line_after_bash_inserts_a_replacement_reads_as_the_candidate(name, typed, open_quote, option, start):
    """Whatever part of a name the user typed (quoted or not, after `--opt=` or not), and wherever
    bash's last word break falls in it, the word bash ends up with means the candidate."""
    name = (start + name).replace("\n", "")  # a line of candidates carries no newline
    assume(option or not name.startswith(("-", "=")))  # else click reads the word as an option
    raw = option + open_quote + quote(name[:typed], open_quote)
    replaced = _bash_word(raw)
    got = replacements(read_word(raw), replaced, [name])
    assert len(got) == 1
    line = raw[: len(raw) - len(replaced)] + got[0]
    if read_word(raw).quote and not line.endswith(read_word(raw).quote[-1]):
        line += read_word(raw).quote[-1]  # bash closes the quote after a single candidate
    after = read_word(line)
    assert (after.value, after.quote) == (option + name, "")


def _bash_word(raw: str) -> str:
    """The part of the word `raw` bash replaces: after an open quote, else after the last `=` or
    `:` neither quoted nor escaped (what the function gets as `$2`)."""
    quote_char, quote_start, cut = "", 0, 0
    i = 0
    while i < len(raw):
        c = raw[i]
        if quote_char:
            if c == "\\" and quote_char != "'":
                i += 1
            elif c == quote_char[-1]:
                quote_char = ""
        elif c == "\\":
            i += 1
        elif c == "$" and raw.startswith("'", i + 1):
            quote_char, quote_start = "$'", i + 2
            i += 1
        elif c in "'\"":
            quote_char, quote_start = c, i + 1
        elif c in "=:":
            cut = i + 1
        i += 1
    return raw[quote_start:] if quote_char else raw[cut:]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_reads_each_quoted_candidate_as_itself():
    """The quoting, checked by bash itself: every nasty name, after each quote a user can open."""
    cases = [(name, q) for name in NASTY for q in OPEN_QUOTES]
    script = "".join(f"printf '%s\\x1f' {_closed(q + quote(name, q))}\n" for name, q in cases)
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\x1f")[:-1] == [name for name, _ in cases]


def _closed(written: str) -> str:
    """`written` with its open quote closed, as bash closes it after a single candidate."""
    still_open = read_word(written).quote
    return written + still_open[-1:] if still_open and not written.endswith(still_open[-1]) else written
