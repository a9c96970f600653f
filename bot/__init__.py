"""atombot: the running system (settings, composition root, CLI, router, scheduler, adapters)."""
