"""The reference model as an engine transport, in this process."""

from tickwire.protocol.link import ModelParams
from tickwire.sim.model import ExchangeModel

__all__ = ["ModelEngine"]


class ModelEngine:
    """The reference model (``tickwire.sim.model``) in this process."""

    name = "model"
    batch = False

    def __init__(self, params=None):
        self.params = params = params or ModelParams()
        self.model = ExchangeModel(params)
        self.process = self.model.process

    def process_all(self, commands):
        return [self.process(cmd) for cmd in commands]

    def close(self):
        pass

    @classmethod
    def from_spec(cls, option, params=None):
        if option:
            raise ValueError(f"the model engine takes no option (got {option!r})")
        return cls(params)
