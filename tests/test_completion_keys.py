"""TAB pressed in a real bash and a real zsh, in a pseudo-terminal, with the scripts in completions/:
what lands on the command line, and the words the shell then reads from it.

Bash splits the words it hands a completion function at `=` and `:` (COMP_WORDBREAKS), and
replaces only the text after the last of them; zsh reads the candidates twice before inserting
them. Only the shells themselves show whether `--audience=https://ma<TAB>` or a name with a
backslash comes out right.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, msi_executable

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal"),
]

TENANTS = ("Contoso Ltd", "back\\slash", "dollar$sign", "it's", "Ops:East", 'say "hi"', "semi;colon")

# After TAB, a key that prints the line and the words the shell reads from it (quotes removed),
# between markers: \x1e line \x1d word \x1d word ... \x1f
BASHRC = r"""
PS1='msi-test-prompt> '
source '{script}'
_msi_test_dump() {{
    local -a w
    eval "w=( $READLINE_LINE )"
    printf '\x1e%s' "$READLINE_LINE"; printf '\x1d%s' "${{w[@]}}"; printf '\x1f\n'
}}
bind -x '"\C-x\C-p": _msi_test_dump'
"""

ZSHRC = r"""
PS1='msi-test-prompt> '
source '{script}'
_msi_test_dump() {{
    local -a w
    w=( "${{(@Q)${{(z)BUFFER}}}}" )
    print -rn -- $'\x1e'"$BUFFER"; printf '\x1d%s' "${{w[@]}}"; print -rn -- $'\x1f'
}}
zle -N _msi_test_dump
bindkey '^X^P' _msi_test_dump
"""


@pytest.fixture
def world(cli, tmp_path):
    cli.ok("create-resource", "web1", "--type", "webapp", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--user-assigned", "shared-id", "-o", "none")
    cli.ok("create-identity", "spare-id", "-o", "none")
    cli.ok("create-identity", "team-id", "-g", "team(a)", "-o", "none")
    for name in TENANTS:
        cli.ok("create-tenant", name, "-o", "none")
    other = tmp_path / "other" / "state.toml"
    cli.ok("--state", str(other), "--create", "create-resource", "elsewhere1", "--type", "vm", "-o", "none")
    return other


def _press_tab(shell: str, lines: list[str], state: Path, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """Each line typed into one interactive `shell`, then TAB: (the line after it, its words)."""
    import pty

    home = tmp_path / f"home-{shell}"
    home.mkdir()
    script = REPO / "completions" / f"msi.{shell}"
    (home / ".zshrc").write_text(ZSHRC.format(script=script))
    (home / "bashrc").write_text(BASHRC.format(script=script))
    (home / "inputrc").write_text("")  # readline as shipped, whatever /etc/inputrc sets
    exe = msi_executable()
    bin_dir = Path(exe[0]).parent if len(exe) == 1 else Path(sys.executable).parent
    env = {"HOME": str(home), "ZDOTDIR": str(home), "INPUTRC": str(home / "inputrc"), "TERM": "dumb",
           "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "MSI_STATE": str(state), "LANG": "C.UTF-8"}
    argv = ["bash", "--noprofile", "--rcfile", str(home / "bashrc"), "-i"] if shell == "bash" else ["zsh", "-i"]

    pid, fd = pty.fork()
    if pid == 0:  # the child: the interactive shell
        os.chdir(tmp_path)
        os.execvpe(argv[0], argv, env)

    out = b""

    def read_until(done, limit: float = 60) -> None:
        nonlocal out
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not done(out):
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk

    results = []
    try:
        read_until(lambda seen: b"msi-test-prompt> " in seen)
        for line in lines:
            dumps = out.count(b"\x1f")
            os.write(fd, line.encode() + b"\t\x18\x10")  # the line, TAB, then the key that shows it
            read_until(lambda seen, n=dumps: seen.count(b"\x1f") > n)
            found = re.findall(rb"\x1e([^\x1f]*)\x1f", out)
            assert len(found) > dumps, f"{shell} showed no line after TAB on {line!r}: {out[-2000:]!r}"
            typed, *words = found[-1].decode().split("\x1d")
            results.append((typed, words))
            os.write(fd, b"\x15")  # clear the line for the next one
    finally:
        os.write(fd, b"\x03exit\n")
        os.close(fd)
        os.waitpid(pid, 0)
    return results


def _check(shell, cases, world, isolated_state, tmp_path):
    """cases: (typed, the line after TAB or None to skip that check, the last word the shell reads)."""
    got = _press_tab(shell, [typed.format(other=world) for typed, _, _ in cases], isolated_state, tmp_path)
    wrong = []
    for (typed, line, word), (after, words) in zip(cases, got):
        line = line.format(other=world) if line is not None else None
        if (line is not None and after != line) or words[-1:] != [word]:
            wrong.append(f"{typed!r}: the line became {after!r}, read as {words!r}; expected {line!r}, ending in {word!r}")
    assert not wrong, "\n".join(wrong)


# (typed, then TAB; the line bash shows after the TAB; the last word bash reads from it)
BASH_CASES = [
    # `--opt=value`: the value completes after the `=`, and an earlier `--state=PATH` is read
    ("msi --state={other} show el", "msi --state={other} show elsewhere1 ", "elsewhere1"),
    ("msi token vm1 --audience=https://management.az", "msi token vm1 --audience=https://management.azure.com ",
     "--audience=https://management.azure.com"),
    ("msi list resources -g=r", "msi list resources -g=r", "-g=r"),  # msi reads `-g=rg1` as "=rg1": nothing offered
    ("msi list resources --resource-group=te", "msi list resources --resource-group=team\\(a\\) ", "--resource-group=team(a)"),
    ("msi show --resource-group=rg1 s", "msi show --resource-group=rg1 shared-id ", "shared-id"),
    ("msi show s", "msi show s", "s"),  # without the group: shared-id and spare-id
    # a `:` in the value, typed or completed
    ("msi token vm1 --audience https://management.az", "msi token vm1 --audience https://management.azure.com ",
     "https://management.azure.com"),
    ("msi token vm1 --audience='https://management.az", "msi token vm1 --audience='https://management.azure.com' ",
     "--audience=https://management.azure.com"),
    ("msi create-subscription x --tenant Ops:E", "msi create-subscription x --tenant Ops:East ", "Ops:East"),
    ("msi create-subscription x --tenant=Op", "msi create-subscription x --tenant=Ops:East ", "--tenant=Ops:East"),
    ("msi create-subscription x --tenant=Ops:", "msi create-subscription x --tenant=Ops:East ", "--tenant=Ops:East"),
    # names that need quoting: escaped, or inside the quote the user opened
    ("msi create-subscription x --tenant Con", "msi create-subscription x --tenant Contoso\\ Ltd ", "Contoso Ltd"),
    ("msi create-subscription x --tenant b", "msi create-subscription x --tenant back\\\\slash ", "back\\slash"),
    ("msi create-subscription x --tenant do", "msi create-subscription x --tenant dollar\\$sign ", "dollar$sign"),
    ("msi create-subscription x --tenant it", "msi create-subscription x --tenant it\\'s ", "it's"),
    ("msi create-subscription x --tenant sa", 'msi create-subscription x --tenant say\\ \\"hi\\" ', 'say "hi"'),
    ("msi create-subscription x --tenant se", "msi create-subscription x --tenant semi\\;colon ", "semi;colon"),
    ('msi create-subscription x --tenant "do', 'msi create-subscription x --tenant "dollar\\$sign" ', "dollar$sign"),
    ('msi create-subscription x --tenant "sa', 'msi create-subscription x --tenant "say \\"hi\\"" ', 'say "hi"'),
    ("msi create-subscription x --tenant 'it", "msi create-subscription x --tenant 'it'\\''s' ", "it's"),
    ("msi create-subscription x --tenant 'b", "msi create-subscription x --tenant 'back\\slash' ", "back\\slash"),
    ("msi create-subscription x --tenant $'it", "msi create-subscription x --tenant $'it\\'s' ", "it's"),
    ("msi create-subscription x --tenant=b", "msi create-subscription x --tenant=back\\\\slash ", "--tenant=back\\slash"),
    ("msi create-subscription x --tenant Contoso\\ ", "msi create-subscription x --tenant Contoso\\ Ltd ", "Contoso Ltd"),
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_tab_completes_option_values_and_names_that_need_quoting(world, isolated_state, tmp_path):
    _check("bash", BASH_CASES, world, isolated_state, tmp_path)


# zsh keeps `--opt=value` one word, but must be told to match the candidates after the `=`; it
# quotes what it inserts itself (an open quote in the middle of a word becomes backslashes).
ZSH_CASES = [
    ("msi --state={other} show el", "msi --state={other} show elsewhere1 ", "elsewhere1"),
    ("msi token vm1 --audience=https://management.az", "msi token vm1 --audience=https://management.azure.com ",
     "--audience=https://management.azure.com"),
    ("msi token vm1 --audience https://management.az", "msi token vm1 --audience https://management.azure.com ",
     "https://management.azure.com"),
    ("msi list resources -g=r", "msi list resources -g=r", "-g=r"),  # msi reads `-g=rg1` as "=rg1": nothing offered
    ("msi list resources --resource-group=te", "msi list resources --resource-group=team\\(a\\) ", "--resource-group=team(a)"),
    ("msi show --resource-group=rg1 s", "msi show --resource-group=rg1 shared-id ", "shared-id"),
    ("msi create-subscription x --tenant=Ops:", "msi create-subscription x --tenant=Ops:East ", "--tenant=Ops:East"),
    ("msi create-subscription x --tenant b", "msi create-subscription x --tenant back\\\\slash ", "back\\slash"),
    ("msi create-subscription x --tenant 'b", "msi create-subscription x --tenant 'back\\slash' ", "back\\slash"),
    ('msi create-subscription x --tenant "b', 'msi create-subscription x --tenant "back\\\\slash" ', "back\\slash"),
    ("msi create-subscription x --tenant=b", "msi create-subscription x --tenant=back\\\\slash ", "--tenant=back\\slash"),
    ("msi create-subscription x --tenant do", "msi create-subscription x --tenant dollar\\$sign ", "dollar$sign"),
    ("msi create-subscription x --tenant it", "msi create-subscription x --tenant it\\'s ", "it's"),
    ("msi create-subscription x --tenant sa", 'msi create-subscription x --tenant say\\ \\"hi\\" ', 'say "hi"'),
    ("msi create-subscription x --tenant se", "msi create-subscription x --tenant semi\\;colon ", "semi;colon"),
    ("msi create-subscription x --tenant Ops", "msi create-subscription x --tenant Ops:East ", "Ops:East"),
    ("msi create-subscription x --tenant Contoso\\ ", "msi create-subscription x --tenant Contoso\\ Ltd ", "Contoso Ltd"),
    ('msi create-subscription x --tenant "Contoso ', 'msi create-subscription x --tenant "Contoso Ltd" ', "Contoso Ltd"),
]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_tab_completes_option_values_and_names_that_need_quoting(world, isolated_state, tmp_path):
    _check("zsh", ZSH_CASES, world, isolated_state, tmp_path)
