// Package config is the proxy's declarative configuration: the schema of
// SPEC section 3 as Go types, a strict parser for YAML and JSON documents,
// defaults, semantic validation with field paths, and the content-hash
// version.
//
// The life of a document is Parse (strict decode, then ApplyDefaults),
// Validate (every problem at once, each with a path such as
// "routes[2].path_regex"), then Version/Canonical to identify it. A *Config
// is a plain value: nothing in this package starts goroutines or keeps
// state, and a *Config may be read by many goroutines at once as long as
// nobody mutates it. Callers that need to mutate a shared config use Clone.
//
// This package is a leaf: it imports no other internal package, so config
// format changes stay here and in the compile step.
package config
