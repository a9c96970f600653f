"""The repository, one module per aggregate; :class:`storage.repository.Repository` joins them."""
