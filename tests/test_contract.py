"""The contract is one plain-Python module, its docs are generated, and the layers keep apart:
the host never needs amaranth, the gateware imports nothing of the host but the contract."""
import re
import subprocess
import sys
from pathlib import Path

from wirestamp import regmap
from wirestamp.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_register_docs_are_up_to_date():
    assert main(["regs", "--check", str(ROOT / "docs" / "registers.md")]) == 0, \
        "docs/registers.md is stale: run `make docs`"


def test_stale_docs_are_detected(tmp_path):
    stale = tmp_path / "registers.md"
    stale.write_text(regmap.markdown().replace("TX_FRAMES", "TX_FRAME"))
    assert main(["regs", "--check", str(stale)]) == 1


def test_host_library_does_not_import_amaranth():
    code = ("import sys, wirestamp, wirestamp.regmap, wirestamp.protocol, wirestamp.streams, "
            "wirestamp.rates, "
            "wirestamp.cli; sys.exit('amaranth' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_gateware_imports_only_the_contract_from_the_host():
    host_modules = {p.stem for p in (ROOT / "host").glob("*.py")} - {"__init__"}
    for path in (ROOT / "hdl").rglob("*.py"):
        depth = len(path.relative_to(ROOT / "hdl").parts)   # dots that climb out of hdl/
        for dots, module, imported in re.findall(r"^from (\.+)(\w*) import (\w+)",
                                                 path.read_text(), re.M):
            name = module or imported
            if len(dots) == depth + 1 - (path.name == "__init__.py") and name in host_modules:
                assert name == "regmap", f"{path.relative_to(ROOT)} imports wirestamp.{name}"


def test_register_map_is_consistent():
    names = [r.name for r in regmap.REGISTERS]
    assert len(names) == len(set(names))
    assert regmap.SIGNATURE_BYTES == 18 == 64 - regmap.FCS_BYTES - regmap.HEADER_BYTES
    assert regmap.STREAM_TABLE.row_words <= regmap.STREAM_TABLE.stride
