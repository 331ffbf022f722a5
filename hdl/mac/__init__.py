"""Gigabit Ethernet MAC on GMII (IEEE 802.3 clause 35), one byte per 125 MHz cycle."""
