"""modelyard: a self-hosted LLM platform."""

__version__ = "0.1.0"
