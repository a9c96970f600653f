"""Platform adapters: the only code that imports a chat SDK."""
