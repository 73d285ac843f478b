"""GuardPost command line and the demo that wires broker, server and a simulated gate."""

__version__ = "0.1.0"
