"""kubesvc in a test suite: ``Plane`` (a private data plane with helpers) and the pytest plugin over it.

``kubesvc.testing.plane`` needs nothing but kubesvc; ``kubesvc.testing.pytest_plugin`` is loaded by pytest alone
(the ``pytest11`` entry point), never by the CLI. See docs/commands/pytest.md.
"""
