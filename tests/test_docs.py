"""The documentation holds together: every relative link and `#anchor` resolves, README stays an
operator's page, it keeps the test command CI runs, and every plugin has its page.

Anchors follow GitHub's rules (lowercase, markup and punctuation dropped, spaces to '-', a repeated
heading gets -1, -2, ...), so a link that works here works on the rendered page. No root needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_MAX_LINES = 260

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    docs = sorted((REPO / "docs").rglob("*.md"))
    return [README, *docs]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, code spans blanked out."""
    out, fenced = [], False
    for no, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((no, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the headings of `path`."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link in the prose of `path`."""
    text = path.read_text(encoding="utf-8")
    return [(no, m.group(1)) for no, line in prose_lines(text) for m in LINK.finditer(line)]


def broken_links(path: Path) -> list[str]:
    """What is wrong with each relative link of `path`: a missing file or an unknown anchor."""
    problems = []
    for no, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        ref, _, anchor = target.partition("#")
        dest = (path.parent / ref).resolve() if ref else path
        where = f"{path.relative_to(REPO)}:{no}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor:
            if dest.is_dir() or dest.suffix != ".md":
                problems.append(f"{where}: an anchor into something that is not Markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{where}: no heading makes #{anchor}")
    return problems


# ---- the rules themselves ---------------------------------------------------------------------
@pytest.mark.parametrize("heading, anchor", [
    ("A node's allocations, and what a reboot leaked: `pycni status` and `pycni gc`",
     "a-nodes-allocations-and-what-a-reboot-leaked-pycni-status-and-pycni-gc"),
    ("Differences from the reference v1.9.1", "differences-from-the-reference-v191"),
    ("Node readiness: NetworkReady and CNI STATUS", "node-readiness-networkready-and-cni-status"),
    ("critest, the CRI validation suite", "critest-the-cri-validation-suite"),
    ("Why one onedir bundle", "why-one-onedir-bundle"),
    ("How `pycni status` and `pycni gc` are built and tested",
     "how-pycni-status-and-pycni-gc-are-built-and-tested"),
    ("Keys every plugin accepts", "keys-every-plugin-accepts"),
    ("End to end: emulated kind nodes", "end-to-end-emulated-kind-nodes"),
    ("`PYCNI_NFT_TIMEOUT` and **bold**", "pycni_nft_timeout-and-bold"),
])
def test_slug_follows_githubs_rules(heading, anchor):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_number_and_code_blocks_make_none(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Tests\n\n## Tests\n\n```sh\n# not a heading\n```\n")
    assert anchors(page) == {"tests", "tests-1"}


def test_a_broken_link_or_anchor_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "a.md").write_text("# Here\n\n[ok](#here) [gone](b.md) [bad](a.md#nowhere) "
                                   "`[in code](c.md)` [web](https://example.com/x#y)\n")
    problems = broken_links(tmp_path / "a.md")
    assert problems == ["a.md:3: b.md: no such file", "a.md:3: a.md#nowhere: no heading makes #nowhere"]


# ---- the documentation ------------------------------------------------------------------------
@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(path):
    assert broken_links(path) == []


def test_the_readme_is_an_operators_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_shows_the_command_ci_runs():
    """.ci/run runs the README's test command: the README must show it, as root, in a code block."""
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line.split(None, 1)[1] for line in ci.splitlines() if line.startswith("exec "))
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The two commands"):]
    section = section[:section.index("\n## ", 1)]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no sh block under 'The two commands'"
    shown = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    assert ["sudo", *command.split()] in shown


def test_every_plugin_has_its_page():
    """One page per plugin type (a schema in conf/schemas/), each with the sections an operator
    looks for, and linked from the plugins' index."""
    types = sorted(p.stem for p in (REPO / "conf" / "schemas").glob("*.json"))
    assert types
    index = REPO / "docs" / "plugins" / "README.md"
    linked = {target for _no, target in links(index)}
    for name in types:
        page = REPO / "docs" / "plugins" / f"{name}.md"
        assert page.exists(), name
        assert {"keys", "verbs", "on-the-host", "differences-from-the-reference-v191"} <= anchors(page), name
        assert f"{name}.md" in linked, name


REPO_PATH = re.compile(r"^(?:tests|cni|ipam|bench|conf)/[\w./-]*$")


def missing_paths(path: Path, repo: Path = REPO) -> list[str]:
    """Repository paths in code spans of `path`'s prose (`tests/...::test` too) that do not exist.
    A span with a placeholder or a glob (`<type>`, `*`) names no one path and is skipped."""
    text = path.read_text(encoding="utf-8")
    out, fenced = [], False
    for no, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        for m in [] if fenced else CODE_SPAN.finditer(line):
            target = m.group(2).strip().split("::")[0]
            if REPO_PATH.match(target) and not (repo / target).exists():
                out.append(f"{path.name}:{no}: {target}")
    return out


def test_a_missing_path_is_reported(tmp_path):
    (tmp_path / "cni").mkdir()
    (tmp_path / "cni" / "here.py").write_text("")
    (tmp_path / "a.md").write_text("`cni/here.py` `cni/gone.py` `tests/x.py::test_y` `cni/<x>.py`\n"
                                   "```\n`cni/in_a_block.py`\n```\n")
    assert missing_paths(tmp_path / "a.md", tmp_path) == ["a.md:1: cni/gone.py", "a.md:1: tests/x.py"]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_path_the_documentation_names_exists(path):
    assert missing_paths(path) == []
