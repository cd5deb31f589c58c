"""inferometer: benchmark deep-learning inference across runtimes, and say what to deploy."""

__version__ = "0.1.0"
