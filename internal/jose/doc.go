// Package jose holds the JOSE primitives of the plugin: a strict JSON
// parser (RFC 8259 without duplicate member names), the compact JWS decoder
// (RFC 7515 §7.1), the algorithm registry with signature verification on
// the standard library (RFC 7518, RFC 8037; RSA keys of the usual shape
// prepared once, with the standard library's modular arithmetic as
// filippo.io/bigmod), and RFC 7638 thumbprints.
//
// It imports nothing of Caddy, net/http or logging: its errors carry a kind
// and a detail, and callers map them to their own answers. Nothing here
// fetches anything; keys arrive as bytes.
package jose
