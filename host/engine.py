"""Engine transports: one interface, whatever runs the matching engine.

An engine has ``params`` (its :class:`~tickwire.sim.model.ModelParams`) and
``process(command) -> list[Event]``. The host never knows which one it talks to.

========  =====================================================================
model     the reference model, in process
========  =====================================================================
"""

from .sim.model import ExchangeModel, ModelParams

__all__ = ["ModelEngine", "open_engine", "ENGINES"]


class ModelEngine:
    """The reference model (``tickwire.sim.model``) in this process."""

    name = "model"

    def __init__(self, params=ModelParams()):
        self.params = params
        self.model = ExchangeModel(params)
        self.process = self.model.process

    def close(self):
        pass


ENGINES = {"model": ModelEngine}


def open_engine(spec, params=ModelParams()):
    """Open an engine by its command-line name (``model``)."""
    name = spec.split(":", 1)[0]
    if name not in ENGINES:
        raise ValueError(f"unknown engine {spec!r}; choose from {', '.join(ENGINES)}")
    return ENGINES[name](params)
