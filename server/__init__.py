"""GuardPost central server: registry, ingest, duty status and the web/API."""
