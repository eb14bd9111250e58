"""What the tests and the benches share: the fake chat platforms and cluster (`fakes`), the app graph and
loopback servers (`support`), real `signoff run` processes (`harness`, `crash`) and a throwaway PostgreSQL
database (`postgres`).

Not part of the product (setuptools does not package it); it is importable from the repository root, where
`python -m pytest` runs and where each bench script puts itself on `sys.path`. It imports nothing from
tests/ (tests/unit/test_architecture.py checks).
"""
