// Command caddy is a development build of Caddy with the standard modules
// and jwt_auth, so `go run ./cmd/caddy run --config Caddyfile.example` works
// from a fresh clone. Production builds use xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/jwtauth-caddy/caddy-jwt-auth"
)

func main() {
	caddycmd.Main()
}
