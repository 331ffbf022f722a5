"""wirestamp gateware (Amaranth 0.5). Imports nothing of the host but the contract, `wirestamp.regmap`."""
