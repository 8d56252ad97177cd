<?php
// The php upstream: `php -S 127.0.0.1:PORT router.php` runs this for every
// request and it answers with what PHP, and a Laravel/Symfony app on it,
// reads from the request (the echo format is in ../doc.go).
//
// PHP has already parsed the request before this runs: $_GET and $_POST
// (urlencoded and multipart bodies) with its own name mangling ("." and " "
// become "_", "a[]" an array, the last duplicate wins) and $_SERVER's
// HTTP_* variables. This script only reports them.

// A string field read from a decoded array is untrusted: anything else is
// not a value an app would read as text.
function leaves($value): array
{
    if (is_array($value)) {
        $out = [];
        foreach ($value as $v) {
            array_push($out, ...leaves($v));
        }
        return $out;
    }
    if (is_string($value)) {
        return [$value];
    }
    // JSON scalars other than strings, as their JSON text.
    return [json_encode($value)];
}

// Unicode-aware upper and lower case, as a case-insensitive binder compares
// names. Without mbstring (Laravel requires it, a bare php-cli may lack it)
// strtoupper/strtolower are ASCII-only since PHP 8.2; the only non-ASCII
// letters whose single case mapping is an ASCII letter are added by hand,
// which gives the same answer when the name compared with is ASCII.
function upper(string $s): string
{
    return function_exists('mb_strtoupper') ? mb_strtoupper($s, 'UTF-8') : strtoupper(strtr($s, ['ı' => 'I', 'ſ' => 'S']));
}

function lower(string $s): string
{
    return function_exists('mb_strtolower') ? mb_strtolower($s, 'UTF-8') : strtolower(strtr($s, ["\u{212A}" => 'k']));
}

// Every value of the key accountId, under any spelling of its case.
function accounts($params): array
{
    if (!is_array($params)) {
        return [];
    }
    $out = [];
    foreach ($params as $key => $value) {
        $key = (string) $key;
        if (lower($key) === 'accountid' || upper($key) === 'ACCOUNTID') {
            array_push($out, ...leaves($value));
        }
    }
    return $out;
}

function server(string $name): ?string
{
    return isset($_SERVER[$name]) && is_string($_SERVER[$name]) ? $_SERVER[$name] : null;
}

$contentType = server('CONTENT_TYPE') ?? '';
$input = file_get_contents('php://input'); // empty for multipart: PHP consumed it

// Laravel reads a JSON body instead of $_POST when the content type holds
// "/json" or "+json" (Request::isJson, getInputSource).
$body = $_POST;
if (str_contains($contentType, '/json') || str_contains($contentType, '+json')) {
    $decoded = json_decode($input, true);
    $body = is_array($decoded) ? $decoded : [];
} elseif ($_POST === [] && str_starts_with(strtolower($contentType), 'application/x-www-form-urlencoded')) {
    // Symfony's createFromGlobals parses urlencoded PUT, DELETE and PATCH
    // bodies itself, with PHP's parser; PHP fills $_POST only for POST.
    parse_str($input, $body);
}

// Symfony's Request::getMethod with method parameter override enabled (as
// Laravel enables it): only a POST is overridden, by the header
// X-HTTP-Method-Override, else _method from the body, else from the query;
// the value is upper-cased. Every candidate present is reported, not only
// the one that wins. Symfony ignores non-string values.
$method = server('REQUEST_METHOD') ?? '';
$methods = [$method];
if ($method === 'POST') {
    $candidates = [server('HTTP_X_HTTP_METHOD_OVERRIDE'), $body['_method'] ?? null, $_GET['_method'] ?? null];
    foreach ($candidates as $candidate) {
        if (is_string($candidate) && $candidate !== '') {
            $methods[] = strtoupper($candidate);
        }
    }
}
// Headers other apps and libraries honour, on any method.
foreach (['HTTP_X_HTTP_METHOD', 'HTTP_X_METHOD_OVERRIDE'] as $name) {
    $candidate = server($name);
    if ($candidate !== null && $candidate !== '') {
        $methods[] = strtoupper($candidate);
    }
}

// Headers as received. php -S gives every HTTP_* variable the value of the
// last header whose name maps to it (X-Account-Id and X_Account_Id both map
// to HTTP_X_ACCOUNT_ID), so the raw headers are looked at too.
$headers = [];
$headerAccounts = [];
if (($value = server('HTTP_X_ACCOUNT_ID')) !== null) {
    $headerAccounts[] = $value;
}
foreach (getallheaders() as $name => $value) {
    $headers[(string) $name][] = (string) $value;
    if (strtoupper(strtr((string) $name, '-', '_')) === 'X_ACCOUNT_ID') {
        $headerAccounts[] = (string) $value;
    }
}

// Paths: parse_url's path, Symfony's (the request URI up to "?"), each raw
// and as Laravel decodes it (rawurldecode), and the path PHP itself decoded
// into SCRIPT_NAME and PATH_INFO.
$uri = server('REQUEST_URI') ?? '';
$paths = [];
$parsed = parse_url($uri, PHP_URL_PATH);
if (is_string($parsed)) {
    $paths[] = $parsed;
    $paths[] = rawurldecode($parsed);
}
$symfony = explode('?', $uri, 2)[0];
$paths[] = $symfony;
$paths[] = rawurldecode($symfony);
foreach (['PATH_INFO', 'SCRIPT_NAME'] as $name) {
    if (($value = server($name)) !== null) {
        $paths[] = $value;
    }
}

function unique(array $list): array
{
    return array_values(array_unique($list, SORT_STRING));
}

header('Content-Type: application/json');
http_response_code(200);
echo json_encode([
    'parser' => 'php',
    'method' => $method,
    'methods' => unique($methods),
    'query_accounts' => unique(accounts($_GET)),
    'header_accounts' => unique($headerAccounts),
    'cookie_accounts' => unique(accounts($_COOKIE)),
    'body_accounts' => unique(accounts($body)),
    'paths' => unique($paths),
    'header' => (object) $headers,
], JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
