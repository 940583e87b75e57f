"""What the integration tests (``tests/integration``) and the benchmark (``bench``) share: the
test stack deployed with the real engine, kubectl helpers, the health check, the sequenced
writer and its analysis, the failure scenarios and one bounded wait.

Modules: :mod:`.deployment`, :mod:`.kube`, :mod:`.health`, :mod:`.traffic`, :mod:`.scenarios`,
:mod:`.wait`. Nothing here imports ``tests`` or ``bench``.
"""
