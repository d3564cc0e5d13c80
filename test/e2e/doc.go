// Package e2e holds the proxy's end-to-end tests. TestMain builds the real
// proxy binary once; every test runs it as a subprocess on loopback in
// front of real upstreams (httptest servers, a grpc-go server, a WebSocket
// server and raw TCP servers that misbehave on purpose) and asserts what a
// client and an upstream observe, plus the access log and metrics, against
// the contract in SPEC.md.
//
// Run with: go test ./test/e2e/ (add -short to skip the 1 GiB transfers).
package e2e
