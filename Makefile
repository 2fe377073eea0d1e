# tickwire: `make run` (the main job) and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
BOARD  ?= icebreaker
ARGS   ?=

.PHONY: run test regress bench bitstream program board-pty serve clean tools-check

# The stamp files record which extras are installed; pyproject.toml changes re-install.
$(VENV)/.base: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "tickwire needs Python 3.11 or newer (Debian 12: apt-get install python3)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "python3 -m venv failed: apt-get install python3-venv"; exit 1; }
	$(PIP) install -e .
	@touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e '.[test,hdl,bench]'
	@touch $@

run: $(VENV)/.base
	$(VENV)/bin/tickwire run $(ARGS)

test: $(VENV)/.test tools-check
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 -q $(ARGS)

regress: $(VENV)/.test tools-check
	$(PY) -m pytest -n 2 -q -m regress --timeout 3600 $(ARGS)

bench: $(VENV)/.test
	$(VENV)/bin/tickwire bench $(ARGS)

# make bitstream BOARD=icebreaker|ulx3s: YoWASP Yosys/nextpnr from PyPI; build/<board>/report.json
bitstream: $(VENV)/.test
	$(PY) -c 'import sys; from tickwire.boards.synth import bitstream_main; sys.exit(bitstream_main(sys.argv[1:]))' --board $(BOARD) $(ARGS)

program: $(VENV)/.base
	$(PY) -c 'import sys; from tickwire.boards.synth import program_main; sys.exit(program_main(sys.argv[1:]))' --board $(BOARD) $(ARGS)

# make board-pty BOARD=icebreaker|ulx3s: the board's gateware (link, engine, feed, UARTs, its
# book) simulated behind /dev/pts/N; then tickwire replay FILE --engine serial:/dev/pts/N
board-pty: $(VENV)/.base
	$(PY) -m tickwire.sim.board_pty --board $(BOARD) $(ARGS)

serve: $(VENV)/.base
	$(VENV)/bin/tickwire serve $(ARGS)

# Tools PyPI does not have: the tests that need them skip, saying so; CI installs them.
tools-check:
	@command -v tshark >/dev/null || echo "note: tshark missing (apt-get install tshark): decoder cross-checks will be skipped"
	@command -v iverilog >/dev/null || echo "note: iverilog missing (apt-get install iverilog): Icarus runs will be skipped"
	@command -v g++ >/dev/null || echo "note: g++ missing (apt-get install g++ make perl): Verilator runs will fail"
	@test -e /usr/include/lz4.h || echo "note: lz4.h missing (apt-get install liblz4-dev): Verilator waveform tests will be skipped"

clean:
	rm -rf build sim_build .pytest_cache
