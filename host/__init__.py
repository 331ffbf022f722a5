"""wirestamp: host library for the wirestamp hardware network tester.

    with wirestamp.open("serial:///dev/ttyUSB1?baud=3000000") as dev:
        print(dev.identify())
"""
from .device import Device, LinkError, open  # noqa: A004 (wirestamp.open is the entry point)
from .regmap import VERSION as CONTRACT_VERSION

__version__ = "0.1.0"
__all__ = ["open", "Device", "LinkError", "CONTRACT_VERSION", "__version__"]
