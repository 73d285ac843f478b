"""GuardPost wire contract: topics, payloads and signing shared by the agent and the server."""
