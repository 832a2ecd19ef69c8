"""Figures quoted in docs/ agree with the code that defines them."""

import re
from pathlib import Path

import numpy as np

from spec.config import Config
from spec.cycles import cycles_per_step, presentation_cycles
from spec.registers import markdown_table as register_table

DOCS = Path(__file__).resolve().parent.parent / "docs"


def cycles_example_rows(n1=20, n2=30):
    cfg = Config()
    s1 = np.full(cfg.timesteps, n1)
    s2 = np.full(cfg.timesteps, n2)
    rows = []
    for P, L in ((1, 1), (2, 1), (4, 1), (8, 1), (2, 3), (4, 3)):
        nb1, nb2 = -(-cfg.n_hid // P), -(-cfg.n_out // P)
        per_int = (n1 * cfg.n_hid + n2 * cfg.n_out) / (n1 * nb1 + n2 * nb2)
        rows.append(f"| {P} | {L} | {cycles_per_step(cfg, P, n1, n2, L)} | "
                    + " | ".join(str(presentation_cycles(cfg, P, m, s1, s2, L))
                                 for m in ("infer", "erbp", "dfa"))
                    + f" | {per_int:.3f} |")
    return rows


def test_cycles_worked_example_matches_the_formulas():
    text = (DOCS / "cycles.md").read_text()
    block = re.search(r"<!-- cycles-example -->\n(.*?)<!-- /cycles-example -->", text, re.S)
    assert block, "docs/cycles.md lost its example markers"
    table = block.group(1).strip().splitlines()[2:]
    assert table == cycles_example_rows(), "\n".join(["docs/cycles.md should read:"]
                                                      + cycles_example_rows())


def _between(text, tag):
    return text.split(f"<!-- {tag} -->")[1].split(f"<!-- /{tag} -->")[0].strip()


def test_register_tables_are_the_register_map():
    table = register_table(Config())
    for doc in ("spec.md", "protocol.md"):
        assert _between((DOCS / doc).read_text(), "register-table") == table, \
            f"docs/{doc}: the register table is stale; regenerate it with " \
            "python -m spec.registers --markdown"


def test_architecture_names_files_and_components_that_exist():
    """docs/architecture.md: every file it names exists, every component class it names is
    defined in the file of its row."""
    root = DOCS.parent
    text = (DOCS / "architecture.md").read_text()
    paths = set(re.findall(r"`((?:spec|sim|hdl|sw|boards|bench|tests|docs)/[\w/.]*)`", text))
    assert len(paths) > 15
    missing = [p for p in paths if not (root / p).exists()]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
    for pkg, heading in (("hdl/core", "## The core"), ("hdl/link", "## The host link")):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for file, classes in re.findall(r"^\| `(\w+\.py)` \| ([^|]*) \|", section, re.M):
            source = (root / pkg / file).read_text()
            for cls in re.findall(r"`(\w+)`", classes):
                assert re.search(rf"^(class {cls}\b|{cls} = )", source, re.M), (pkg, file, cls)
