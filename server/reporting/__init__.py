"""Provincial supervision system upload: snapshot records, batch them in an outbox, sign, send, keep receipts."""
