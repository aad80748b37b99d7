"""The house drawn in README.md stays true: calls run one way, down its rows, so no file of src/
calls back into one that calls it; and every file of src/ is built (the Makefile's SOURCES) and
drawn. Read from the compiled objects (nm: what each defines, what it takes from the others)."""

import re
import subprocess
from pathlib import Path

from conftest import LAUNCHER_DIR, SOURCE_DIR


def symbols(obj: Path) -> tuple[set[str], set[str]]:
    """What an object file defines (functions and data) and what it leaves to the others."""
    defined, undefined = set(), set()
    listing = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if fields[-2:-1] == ["U"]:
            undefined.add(fields[-1])
        elif len(fields) == 3 and fields[1] in "TDBR":
            defined.add(fields[2])
    return defined, undefined


def calls(tmp_path: Path) -> dict[str, set[str]]:
    """Each source file of src/ and the files whose symbols it uses."""
    found = {}
    for source in sorted(SOURCE_DIR.glob("*.c")):
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run(["cc", "-std=c11", "-c", "-o", obj, source], check=True)
        found[source.name] = symbols(obj)
    return {
        name: {other for other, (defined, _) in found.items() if other != name and taken & defined}
        for name, (_, taken) in found.items()
    }


def drawn_rows() -> list[list[str]]:
    """README.md's drawing, top row first: the .c files each row names."""
    text = (LAUNCHER_DIR / "README.md").read_text()
    drawing = text[text.index("    launcher.c ") : text.index("## The threat")]
    rows = [re.findall(r"\b\w+\.c\b", line) for line in drawing.splitlines()]
    return [sorted(set(row)) for row in rows if row]


def test_calls_run_down_the_drawing_only(tmp_path: Path) -> None:
    rows = drawn_rows()
    row_of = {name: i for i, row in enumerate(rows) for name in row}
    graph = calls(tmp_path)
    assert set(graph) == set(row_of), f"the drawing names {sorted(row_of)}, src/ {sorted(graph)}"
    upward = [f"{a} -> {b}" for a, to in graph.items() for b in to if row_of[b] <= row_of[a]]
    assert not upward, f"calls on the same row or back up the drawing: {upward}"


def test_every_source_is_built() -> None:
    makefile = (LAUNCHER_DIR / "Makefile").read_text()
    listed = re.search(r"^SOURCES := \$\(addprefix src/,(.*?)\)$", makefile, re.M | re.S)
    assert listed, "the Makefile's SOURCES line has another shape"
    built = set(listed.group(1).replace("\\", " ").split())
    assert built == {p.name for p in SOURCE_DIR.glob("*.c")}
