"""Tamper evidence: check-in events and duty corrections sealed into a hash chain, verified per month."""
