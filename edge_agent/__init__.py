"""GuardPost edge agent: gate terminal software (capture, verify, outbox, publish)."""
