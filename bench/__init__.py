"""Benchmarks: ``python -m bench [NAME ...]`` runs them and writes JSON under bench/results/.

Every module here that defines ``main(argv: list[str]) -> int`` and whose name does not
start with ``_`` or ``gen_`` is a benchmark. Figures are printed beside a baseline
measured in the same run, never against a number remembered from another machine.
"""
