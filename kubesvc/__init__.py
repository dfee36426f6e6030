"""kubesvc: the Kubernetes Service plane on one machine. Version only; import nothing heavy."""

__version__ = "0.1.0"
