"""The contract is one plain-Python module, its docs are generated, and the layers keep apart:
the host never needs amaranth, the gateware imports nothing of the host but the contract."""
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
    from wirestamp.sim.runner import imported_modules
    contract = {"wirestamp.regmap", "wirestamp.protocol"}
    seen = set()
    for path in (ROOT / "hdl").rglob("*.py"):
        for module, _ in imported_modules(path):      # every import, in functions too
            if not module.startswith("wirestamp.hdl"):
                assert module in contract, f"{path.relative_to(ROOT)} imports {module}"
                seen.add(module)
    assert seen == contract          # the walker finds the bridge's parenthesised import


def test_the_simulation_cache_key_covers_what_the_gateware_imports():
    from wirestamp.sim.runner import gateware_sources
    sources = gateware_sources()
    assert ROOT / "host" / "protocol.py" in sources and ROOT / "host" / "regmap.py" in sources
    assert ROOT / "host" / "device.py" not in sources     # host code does not shape the build
    assert ROOT / "hdl" / "ctl" / "bridge.py" in sources


def test_register_map_is_consistent():
    names = [r.name for r in regmap.REGISTERS]
    assert len(names) == len(set(names))
    assert regmap.SIGNATURE_BYTES == 18 == 64 - regmap.FCS_BYTES - regmap.HEADER_BYTES
    assert regmap.STREAM_TABLE.row_words <= regmap.STREAM_TABLE.stride
