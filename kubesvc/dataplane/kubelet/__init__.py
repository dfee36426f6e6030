"""The node agent: runs Pods that carry a command as local process groups (see docs/concepts/workloads.md)."""
