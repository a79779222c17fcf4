"""The README and docs/: every YAML example is valid, and every relative link resolves.

Each ```yaml block is checked, named by its file and the line of its opening fence:

* a whole spec (a mapping with ``apiVersion``) goes through ``parse_spec``, the schema and the whole-file
  checks, and compiles for every node, as ``netx validate`` does;
* a fragment (a mapping of top-level spec keys without ``apiVersion``, such as a ``bgp:`` or ``services:``
  snippet) is validated key by key against the Spec model, so a misspelled or misplaced key fails too;
* YAML that is not a netx spec (an Ansible inventory...) is marked with ``<!-- not a netx spec -->`` on the
  line before its fence: it only has to be valid YAML.

The block is padded with the lines before it, so an error reads ``docs/spec.md:LINE:COL`` at the very line
of the Markdown file.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from netplanx.document.loader import load_document
from netplanx.document.validation import schema_problems
from netplanx.errors import PlanError, SpecError
from netplanx.spec.compile import compile_spec
from netplanx.spec.model import API_VERSION, Spec
from netplanx.spec.validate import parse_spec

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_A_SPEC = "<!-- not a netx spec -->"
YAML_TAGS = ("yaml", "yml")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<tag>[^`\s]*)")
SPEC_KEYS = {field.alias or name for name, field in Spec.model_fields.items()} - {"apiVersion"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    tag: str
    text: str  # the block's lines, preceded by as many empty lines as come before it in the page
    marked: bool  # <!-- not a netx spec --> right before it

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def source(self) -> str:
        return str(self.page.relative_to(ROOT))


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page."""
    lines = page.read_text().splitlines()
    found = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group("fence")
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        before = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        found.append(Block(page, start + 1, opening.group("tag").lower(), "\n" * (start + 1) + "\n".join(body) + "\n",
                           before == NOT_A_SPEC))
        index += 1
    return found


YAML_BLOCKS = [block for page in PAGES for block in blocks(page) if block.tag in YAML_TAGS]


def plain_yaml(block: Block) -> object:
    try:
        return YAML(typ="safe", pure=True).load(io.StringIO(block.text))
    except YAMLError as exc:
        pytest.fail(f"{block.name}: not valid YAML: {exc}")


def test_there_are_yaml_examples_to_check():
    assert len(YAML_BLOCKS) >= 10
    assert any(b.page.name == "README.md" for b in YAML_BLOCKS)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.name)
def test_yaml_example_is_valid(block: Block):
    data = plain_yaml(block)
    if block.marked:
        return  # YAML, but not a netx spec: valid YAML is all it must be
    assert isinstance(data, dict) and data, (
        f"{block.name}: a yaml block must be a netx spec or a fragment of one (a mapping of its top-level "
        f"keys); mark other YAML with {NOT_A_SPEC} on the line before the fence")
    if "apiVersion" in data:
        check_whole_spec(block)
    else:
        check_fragment(block, data)


def check_whole_spec(block: Block) -> None:
    try:
        spec, _document = parse_spec(block.text, block.source)
    except SpecError as exc:
        pytest.fail(f"the spec at {block.name} is refused:\n" + "\n".join(exc.problems))
    nodes = [None] if spec.cluster is None else [node.name for node in spec.cluster.nodes]
    for node in nodes:
        try:
            assert compile_spec(spec, node), f"{block.name}: the spec compiles to nothing for node {node}"
        except PlanError as exc:
            pytest.fail(f"the spec at {block.name} does not compile for node {node}:\n" + "\n".join(exc.problems))


def check_fragment(block: Block, data: dict) -> None:
    """Each top-level key of the fragment is validated against its field of the Spec model."""
    unknown = sorted(set(data) - SPEC_KEYS)
    assert not unknown, f"{block.name}: {unknown} are not top-level keys of a spec (allowed: {sorted(SPEC_KEYS)})"
    try:
        document = load_document(block.text, block.source)  # netx's loader: its limits and positions
    except SpecError as exc:
        pytest.fail(f"the fragment at {block.name} is refused:\n" + "\n".join(exc.problems))
    try:
        Spec.model_validate({"apiVersion": API_VERSION, **document.data})
    except ValidationError as exc:
        pytest.fail(f"the fragment at {block.name} is refused:\n" + "\n".join(schema_problems(exc, document, Spec)))


def test_non_spec_yaml_is_marked_only_when_it_is_not_a_spec():
    """The marker is for other YAML: a marked block that is a spec (or a fragment of one) should be checked."""
    wrongly = [b.name for b in YAML_BLOCKS if b.marked and isinstance(data := plain_yaml(b), dict)
               and ("apiVersion" in data or set(data) <= SPEC_KEYS)]
    assert wrongly == []


# Links

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose(page: Path, code: bool = False) -> list[tuple[int, str]]:
    """The numbered lines of a page outside fenced blocks, without inline code unless ``code``."""
    out, fence = [], ""
    for number, line in enumerate(page.read_text().splitlines(), 1):
        opening = FENCE.match(line)
        if opening and (not fence or line.strip().startswith(fence)):
            fence = "" if fence else opening.group("fence")
            continue
        if not fence:
            out.append((number, line if code else INLINE_CODE.sub("", line)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets -1, -2...)."""
    found: set[str] = set()
    for _number, line in prose(page, code=True):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = name = slug(match.group(1))
            count = 0
            while name in found:
                count += 1
                name = f"{base}-{count}"
            found.add(name)
    return found


LINKS = [(page, number, target) for page in PAGES for number, line in prose(page) for target in LINK.findall(line)
         if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: are not checked here


@pytest.mark.parametrize("page,number,target", LINKS,
                         ids=[f"{p.relative_to(ROOT)}:{n}:{t}" for p, n, t in LINKS])
def test_relative_link_resolves(page: Path, number: int, target: str):
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    where = f"{page.relative_to(ROOT)}:{number}"
    assert destination.exists(), f"{where}: link target {target} does not exist"
    assert ROOT in destination.parents or destination == ROOT, f"{where}: {target} leaves the repository"
    if anchor:
        assert destination.suffix == ".md", f"{where}: {target}: an anchor into a file that is not Markdown"
        assert anchor in anchors(destination), (
            f"{where}: {target}: no heading with anchor #{anchor} in {destination.relative_to(ROOT)}")


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for _n, line in prose(ROOT / "README.md")
              for target in LINK.findall(line) if not target.startswith(("http:", "https:", "#"))}
    missing = [str(page.relative_to(ROOT)) for page in PAGES[1:] if page.resolve() not in linked]
    assert missing == []
