package router_test

import (
	"fmt"
	"net/http"

	"github.com/keelproxy/keel/internal/router"
)

func Example() {
	table, err := router.Compile([]router.Rule[string]{
		{ID: "api", Host: "api.example.com", PathPrefix: "/v1/", Value: "api-pool"},
		{ID: "users", Host: "api.example.com", PathRegex: `/users/[0-9]+`, Methods: []string{"GET"}, Value: "users-pool"},
		{ID: "tenants", Host: "*.tenants.example.com", Value: "tenant-pool"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct{ host, method, path string }{
		{"API.example.com:443", "GET", "/v1/items/../orders"},
		{"api.example.com", "GET", "/users/42"},
		{"api.example.com", "POST", "/users/42"},
		{"acme.tenants.example.com", "GET", "/anything"},
		{"example.org", "GET", "/"},
	} {
		res := table.Match(r.host, r.method, r.path, "", http.Header{})
		switch res.Status {
		case router.Matched:
			fmt.Printf("%s %s -> %s (%s) prefix %q\n", r.method, r.path, res.Rule.ID, res.Rule.Value, res.MatchedPrefix)
		case router.MethodNotAllowed:
			fmt.Printf("%s %s -> 405, Allow: %s\n", r.method, r.path, res.Allow)
		default:
			fmt.Printf("%s %s -> 404\n", r.method, r.path)
		}
	}
	// Output:
	// GET /v1/items/../orders -> api (api-pool) prefix "/v1"
	// GET /users/42 -> users (users-pool) prefix ""
	// POST /users/42 -> 405, Allow: GET
	// GET /anything -> tenants (tenant-pool) prefix ""
	// GET / -> 404
}

func ExampleRuleError() {
	_, err := router.Compile([]router.Rule[int]{{ID: "bad", PathRegex: "/users/[0-9"}})
	fmt.Println(err)
	// Output:
	// rule 0 (id "bad"): PathRegex: invalid regular expression "/users/[0-9": error parsing regexp: missing closing ]: `[0-9`
}
