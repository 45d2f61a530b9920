"""Running the real program offline, under Pulumi mocks: for tests and for `make render`.

The Pulumi CLI and provider plugins are not needed: `runner.run_program` executes
`__main__.py` against a recording mock engine and returns every registered resource.
"""
