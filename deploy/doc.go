// Package deploy holds the files that install aupguard — a systemd unit, a
// container image, a compose file and Kubernetes manifests — and the tests
// that check them against the code: each sample configuration loads with the
// real config loader, and the ports, paths and probes they name are the ones
// the binary serves. It has no code of its own.
package deploy
