"""The demo: a simulated community with hidden user types, played through the real bot.

`demo.simulation` holds the one population and its behaviour, `demo.synthetic` writes that
population's history straight into the store at a chosen volume for tests and benchmarks,
`demo.run` plays the whole loop and `demo.report` renders what it measured.
Only the CLI, tests and benchmarks import this package.
"""
