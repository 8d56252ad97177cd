// Package upstreams runs real web frameworks' request parsers as small HTTP
// servers, for tests that compare what the gateway judged a request to be
// with what the application behind it would read from it.
//
// Each upstream answers every request, whatever its method and path, with
// status 200 and a JSON [Reading]: the method and the method overrides the
// framework honours, the accountId values it reads from the query string,
// the X-Account-Id header and the body, and the path as it exposes it. The
// parsing is done by the frameworks' own code; the servers only report it.
//
//   - php: PHP's built-in server (php -S) with $_GET, $_POST, $_SERVER and
//     Laravel's reading of JSON bodies and method overrides (php/router.php);
//   - rack: Rack 2.2 on WEBrick behind Rack::MethodOverride (rack/server.rb);
//   - node: node:http with qs, body-parser and method-override, as an
//     Express 4 app (node/server.js);
//   - python: http.server with urllib.parse and json (python/server.py);
//   - go: net/http in the test process (golang.go).
//
// A server may refuse a request before the app sees it: php -S and node
// answer 501 or 400 to a method their HTTP parsers do not know, WEBrick 400
// to a request target Ruby's URI parser rejects (an invalid %-escape, raw
// non-ASCII), net/http 400 to an invalid %-escape in the path. Then there is
// no reading, and the app never runs.
//
// Without a parser's runtime (or, for node, its node_modules, installed with
// `npm ci --prefix internal/upstreams/node`) [Start] skips the test, except
// in CI (CI=true), where it fails it.
package upstreams
