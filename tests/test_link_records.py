"""The link records' byte codec against Amaranth's own layout of the same fields (what the
gateware sees), and a field that does not fit is refused by name."""

import random

import pytest
from tickwire.protocol.link import (
    COMMAND_FIELDS,
    COMMAND_LAYOUT,
    EVENT_FIELDS,
    EVENT_LAYOUT,
    Action,
    Command,
    Event,
)


@pytest.mark.parametrize("cls,fields,layout", [(Command, COMMAND_FIELDS, COMMAND_LAYOUT),
                                               (Event, EVENT_FIELDS, EVENT_LAYOUT)])
def test_records_pack_as_the_layout_does(cls, fields, layout):
    rng = random.Random(11)
    for trial in range(300):
        values = {}
        for name, shape in fields:
            if isinstance(shape, int):
                values[name] = rng.choice((0, (1 << shape) - 1, rng.randrange(1 << shape)))
            else:           # the layout takes only an enum's members
                values[name] = rng.choice(list(shape))
        record = cls(**values)
        packed = layout.const(values).as_value().value
        assert record.to_int() == packed, values
        assert record.to_bytes() == packed.to_bytes(cls.BYTES, "little")
        assert cls.from_bytes(record.to_bytes()).to_bytes() == record.to_bytes()


@pytest.mark.parametrize("field,value", [("qty", 1 << 32), ("price", -1), ("action", 16),
                                         ("timestamp", 1 << 48), ("breaker", 1 << 40)])
def test_a_field_that_does_not_fit_is_named(field, value):
    command = Command(**{"action": Action.NEW, "qty": 100, field: value})
    with pytest.raises(ValueError, match=f"Command.{field}={value} does not fit its field"):
        command.to_bytes()
