// Package jose holds the JOSE primitives of the plugin: a strict JSON
// parser (RFC 8259 without duplicate member names), the compact JWS decoder
// (RFC 7515 §7.1), the algorithm registry with signature verification on
// the standard library (RFC 7518, RFC 8037), and the import of JWK Sets and
// PEM keys into standard-library keys (RFC 7517).
//
// It imports nothing of Caddy, net/http or logging: its errors carry a kind
// and a detail, and callers map them to their own answers. Nothing here
// fetches anything; keys arrive as bytes.
package jose
