// Package obs is the proxy's observability: Prometheus instruments (one
// Metrics value built by main, no global registry), the asynchronous JSON
// access log, the slog logger for the proxy's own messages, and the
// redaction rules that keep secrets out of every log.
//
// obs imports no other package of the module, so every package may import
// it.
package obs
