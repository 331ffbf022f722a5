"""Control: the register bank built from the contract."""
