"""`kubesvc proxy`: a userspace kube-proxy (plan, balancer, TCP/UDP forwarding, reconcile loop)."""
