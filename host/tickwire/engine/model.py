"""The reference model as an engine transport, in this process."""

from tickwire.engine.registry import InProcessEngine
from tickwire.protocol.link import ModelParams
from tickwire.sim.model import ExchangeModel

__all__ = ["ModelEngine"]


class ModelEngine(InProcessEngine):
    """The reference model (``tickwire.sim.model``) in this process."""

    name = "model"

    def __init__(self, params=None):
        super().__init__(params or ModelParams())
        self.model = ExchangeModel(self.params)
        self.process = self.model.process
