"""The production edge: nginx in the Python gateway's place, configured from the same settings.

`python -m gateway render-config` writes the configuration (nginx_config.py); nginx_process.py
finds the binary and runs it in the foreground for `make run-edge`, the tests and the bench.
"""
