// Package differential holds the test that puts real upstream parsers
// (internal/upstreams: PHP, Rack, Node, Python, Go) behind a real tokengate
// and sends them many spellings of the same few requests: accounts named in
// every way a framework may read them, method overrides in headers, query
// and bodies, and path tricks. Whenever the gateway admits a request, what
// each upstream read must be what the gateway judged: the account it
// tagged, methods and paths the user's role allows, and every identity tag
// present. Any disagreement is a way past the gateway.
package differential
