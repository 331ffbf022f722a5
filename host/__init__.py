"""wirestamp: host library for the wirestamp hardware network tester."""
from .regmap import VERSION as CONTRACT_VERSION

__version__ = "0.1.0"
__all__ = ["CONTRACT_VERSION", "__version__"]
