"""The web app's chat history: conversations and their messages."""
