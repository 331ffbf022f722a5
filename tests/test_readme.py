"""The README's examples run as written, against the virtual board: every Python block, and
every `wirestamp …` command in its shell blocks (but the ones that build or flash hardware,
or run the demo, which `make demo` covers)."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
COMMANDS = [line.split("#")[0].strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)
            for line in block.splitlines() if line.startswith("wirestamp ")]
COMMANDS = [c for c in COMMANDS if c.split()[1] not in ("build", "flash", "demo")]
TEST_FILES = re.findall(r"```toml\n(.*?)```", README, re.S)


def test_the_readme_has_examples():
    assert PYTHON and COMMANDS and TEST_FILES


@pytest.mark.parametrize("code", PYTHON)
def test_python_example_runs(code, tmp_path):
    assert "sim://" in code
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "StreamStats" in result.stdout and "records" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_shell_example_runs(command, tmp_path):
    args = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", *args, "--quiet"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert ("lost 0" if args[0] == "run" else "wrote") in result.stdout


@pytest.mark.parametrize("text", TEST_FILES)
def test_test_file_example_runs(text, tmp_path):
    (tmp_path / "test.toml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "wirestamp.cli", "run", "--device",
                             "sim://?dut=echo&delay=3us", "--config", "test.toml", "--quiet"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    streams = [line for line in result.stdout.splitlines() if line.startswith("stream ")]
    assert streams and all("  lost 0  " in line for line in streams), result.stdout
