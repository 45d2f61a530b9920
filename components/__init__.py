"""The platform package: typed stack config and the ComponentResources composed by `__main__.py`."""
