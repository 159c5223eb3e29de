// Package deploy holds no code: its tests prove the deployment files beside it (Prometheus rules, the
// Grafana dashboard, the Dockerfile, the Kubernetes manifests and the Terraform) against the code they
// deploy, so that the two cannot drift. See docs/operations.md.
package deploy
