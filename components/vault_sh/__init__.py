"""The Vault bootstrap and unsealer scripts, shipped as shell files (read with importlib.resources)."""
