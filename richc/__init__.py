"""richc: a manager for rich containers, system containers whose PID 1 is a real init."""

__version__ = "0.1.0"
