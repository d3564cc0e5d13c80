package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a config document, attached to the path of
// the offending field in document terms ("routes[2].path_regex",
// "pools[0].endpoints[1].address"). An empty Path means the document as a
// whole (for example a YAML syntax error).
type FieldError struct {
	// Path is the dotted field path with list indexes; empty for the root.
	Path string `json:"path"`
	// Message says what is wrong, in lower case, without the path.
	Message string `json:"message"`
}

// Error returns "path: message", or just the message when Path is empty.
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem found in one pass over a document, in document
// order. Parse and Validate return it as their error (never an empty
// Errors: no problem is a nil error), so callers recover the list with
// errors.As(err, &errs).
type Errors []FieldError

// Error joins the individual errors with "; ".
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// add appends one problem; format and args follow fmt.Sprintf.
func (es *Errors) add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns es as an error, or nil when it is empty, so that a nil
// Errors never hides inside a non-nil error interface.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// field joins a parent path and a key: field("routes[0]", "host") is
// "routes[0].host"; field("", "server") is "server".
func field(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// index appends a list index: index("routes", 2) is "routes[2]".
func index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
