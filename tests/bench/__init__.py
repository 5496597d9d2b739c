"""The benchmark suite (`make bench`): DESIGN.md's performance targets as ratios taken in one run.

Never part of `make test`; see tests/bench/__main__.py.
"""
