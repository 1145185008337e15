"""docs/compliance.md defines every rule ID that code, tests and benchmarks cite, and names real tests.

A citation is a rule ID (a letter A-K and a number, as in B7) in a comment, a docstring or a
benchmark note, written in one of the forms the project uses:
after the word STANDARDS, inside parentheses, before a colon, at the start of the comment or
docstring, or as a part of a test function's name. Lists and ranges count as citing each ID in
them ("A14, A15", "E1/E6", "B1-B6"). String literals that are data are not read, so bytes such as
a quoted-printable "=C3" are never taken for a rule.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPLIANCE = REPO / "docs" / "compliance.md"

ID = r"(?<![\w=])[A-K]\d{1,2}(?!\w)"
ID_LIST = rf"{ID}(?:\s*(?:,|/|-|–|and)\s*{ID})*"
FORMS = (
    re.compile(rf"STANDARDS\s+({ID_LIST})"),                  # STANDARDS E4, STANDARDS A1-A16
    re.compile(r"\(([^()\n]*)\)"),                             # (B7), (G4: explicit ids), (lines <= 76, A12)
    re.compile(rf"({ID_LIST}):"),                              # A4: ...; A11: ...
    re.compile(rf"^\s*(?:-+\s*)?({ID_LIST})(?!\w)"),           # at the start: "G1, on SQLite", "# --- C2, C3"
)
DEFINITION = re.compile(r"^- \*\*([A-K]\d{1,2})\*\* (MUST|SHOULD) — (.+)$", re.MULTILINE)
NAMED_TEST = re.compile(r"\btests/([\w/]+\.py)::(\w+)")
NAMED_MODULE = re.compile(r"\b((?:mailer|bench)/[\w/]+\.py)\b")


def expand(ids: str) -> set[str]:
    """Every ID of a list such as "A14, A15" or a range such as "B1-B6"."""
    found: set[str] = set()
    for m in re.finditer(rf"({ID})(?:\s*[-–]\s*({ID}))?", ids):
        first, last = m.group(1), m.group(2)
        if last and last[0] == first[0] and int(last[1:]) > int(first[1:]):
            found.update(f"{first[0]}{n}" for n in range(int(first[1:]), int(last[1:]) + 1))
        else:
            found.update(i for i in (first, last) if i)
    return found


def cited_in(text: str) -> set[str]:
    """The IDs a comment, docstring or note cites, in any of the FORMS."""
    ids: set[str] = set()
    for form in FORMS:
        for m in form.finditer(text):
            group = m.group(1)
            if form is FORMS[1]:
                ids.update(i for sub in re.finditer(ID_LIST, group) for i in expand(sub.group(0)))
            else:
                ids.update(expand(group))
    return ids


def prose_of(path: Path) -> list[str]:
    """Comments and docstrings of a Python file (each separately); a Markdown note whole, line by line."""
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return source.splitlines()
    texts = [tok.string.lstrip("#") for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                texts.append(doc)
    return texts


def function_names(path: Path) -> set[str]:
    return {node.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def citing_files() -> list[Path]:
    files = [*sorted((REPO / "mailer").rglob("*.py")), *sorted((REPO / "tests").glob("*.py")),
             *sorted((REPO / "bench").glob("*.py")), *sorted((REPO / "bench").glob("*.md"))]
    return [f for f in files if "migrations" not in f.parts]


def citations() -> dict[str, list[str]]:
    """ID -> the files (relative) that cite it."""
    where: dict[str, list[str]] = {}
    for path in citing_files():
        rel = str(path.relative_to(REPO))
        ids = {i for text in prose_of(path) for i in cited_in(text)}
        if path.parent.name == "tests" and path.name.startswith("test_"):
            for name in function_names(path):
                if name.startswith("test_"):
                    ids.update(part.upper() for part in name.split("_") if re.fullmatch(r"[a-kA-K]\d{1,2}", part))
        for i in ids:
            where.setdefault(i, []).append(rel)
    return where


def definitions() -> dict[str, str]:
    return {m.group(1): m.group(0) for m in DEFINITION.finditer(COMPLIANCE.read_text(encoding="utf-8"))}


def test_every_cited_rule_is_defined_in_compliance_md():
    defined = definitions()
    cited = citations()
    assert len(cited) > 40, "the citation forms stopped matching the code"
    missing = {i: files for i, files in sorted(cited.items()) if i not in defined}
    assert not missing, f"cited but not defined in docs/compliance.md: {missing}"


def test_each_definition_names_its_level_tests_and_code():
    text = COMPLIANCE.read_text(encoding="utf-8")
    rule_lines = [line for line in text.splitlines() if re.match(r"^- \*\*[A-K]\d", line)]
    defined = definitions()
    assert len(rule_lines) == len(defined), "a rule line does not read '- **ID** MUST|SHOULD — ...'"
    for rule, line in defined.items():
        assert " Tests: " in line and " Code: " in line, f"{rule}: needs 'Tests:' and 'Code:'"
        if "Tests: not covered yet" not in line:
            assert NAMED_TEST.search(line), f"{rule}: names no test (or say 'not covered yet')"


def test_named_tests_and_modules_exist():
    text = COMPLIANCE.read_text(encoding="utf-8")
    names: dict[str, set[str]] = {}
    wrong = []
    for file, name in NAMED_TEST.findall(text):
        path = REPO / "tests" / file
        if not path.exists():
            wrong.append(f"tests/{file} (no such file)")
            continue
        if name not in names.setdefault(file, function_names(path)):
            wrong.append(f"tests/{file}::{name}")
    wrong += [module for module in NAMED_MODULE.findall(text) if not (REPO / module).exists()]
    assert not wrong, f"docs/compliance.md names what does not exist: {wrong}"


def test_citation_forms():
    """The forms in use are read, lists and ranges are expanded, and data is not taken for a rule."""
    assert cited_in("One-click unsubscribe (RFC 8058; STANDARDS B1-B6).") == {f"B{n}" for n in range(1, 7)}
    assert cited_in("re-checks each batch (STANDARDS B7), then commits (E5)") == {"B7", "E5"}
    assert cited_in("A4: multipart; A11: both bodies") == {"A4", "A11"}
    assert cited_in(" --- C2, C3: confirm ----") == {"C2", "C3"}
    assert cited_in("E1/E6: smtp.connections=3") == {"E1", "E6"}
    assert cited_in("(lines <= 76 octets, A12)") == {"A12"}
    assert cited_in("G1, on SQLite (flock)") == {"G1"}
    assert cited_in("To: =?utf-8?q?Ren=C3=A9e_Lo?=") == set()
    assert cited_in("an A4 sheet, room B12, vitamin B6 and H2O") == set()
