"""Local models: Hugging Face models run in-process, behind the gateway's ``local`` kind."""
