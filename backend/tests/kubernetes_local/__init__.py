"""The local Kubernetes 1.20 of infra/kubernetes-local, seen from the tests: access, deployment, observation."""
