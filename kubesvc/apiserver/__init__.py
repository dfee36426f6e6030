"""The Kubernetes REST API over the kubesvc store: what the real kubectl and client libraries talk to.

Layer: between ``cli`` and the controllers/registry. It may import registry/store/api/controllers,
never ``kubesvc.cli``, typer or rich. Every write goes through ``kubesvc.registry.generic.Registry``,
the same pipeline the CLI uses, so the CLI and the API can never disagree.
"""
