// The node upstream: `node server.js PORT` serves, with node:http, an app
// that reads requests with the libraries an Express 4 app uses, and answers
// with what they read (the echo format is in ../doc.go).
//
//   - the query: qs.parse with Express 4's options ("extended" query
//     parser), and node's querystring.parse, Express 5's default ("simple");
//     both are reported;
//   - the body: body-parser's urlencoded({extended: true}) (qs again, with
//     body-parser's options) and json(), as express.urlencoded and
//     express.json; both inflate gzip and deflate bodies;
//   - the method: method-override with the header getters
//     X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override, a body
//     getter for _method, and its query getter for _method.
'use strict'

const http = require('node:http')
const querystring = require('node:querystring')
const bodyParser = require('body-parser')
const cookie = require('cookie')
const methodOverride = require('method-override')
const parseurl = require('parseurl')
const qs = require('qs')

const maxBody = '2mb'

const bodyParsers = [
  bodyParser.urlencoded({ extended: true, limit: maxBody }),
  bodyParser.json({ limit: maxBody })
]

// Each applies only to a POST (method-override's default), takes the first
// value of a repeated header or key, and only a method node knows.
const overrides = [
  methodOverride('X-HTTP-Method-Override'),
  methodOverride('X-HTTP-Method'),
  methodOverride('X-Method-Override'),
  methodOverride(function (req) { return req.body && req.body._method }),
  methodOverride('_method')
]

// The string leaves of a parsed value.
function leaves (value) {
  if (value === null || value === undefined) return value === null ? ['null'] : []
  if (typeof value === 'object') return Object.values(value).flatMap(leaves)
  return [typeof value === 'string' ? value : JSON.stringify(value)]
}

// Every value of the key accountId, under any spelling of its case.
function accounts (params) {
  if (!params || typeof params !== 'object') return []
  return Object.keys(params)
    .filter(key => key.toLowerCase() === 'accountid' || key.toUpperCase() === 'ACCOUNTID')
    .flatMap(key => leaves(params[key]))
}

// Runs an Express-style middleware to its end, errors included: a body
// parser that fails leaves the body as it was, as the app would see it.
function run (middleware, req, res) {
  return new Promise(resolve => middleware(req, res, () => resolve()))
}

// Whatever the parsers left unread is read and dropped, so the connection
// stays usable.
function drain (req) {
  if (req.readableEnded) return Promise.resolve()
  return new Promise(resolve => {
    req.on('end', resolve)
    req.on('error', resolve)
    req.on('close', resolve)
    req.resume()
  })
}

function safely (read, fallback) {
  try {
    return read()
  } catch {
    return fallback
  }
}

async function echo (req, res) {
  const received = req.method
  for (const parse of bodyParsers) await run(parse, req, res)
  await drain(req)

  // Every override that would apply on its own, not only the last one.
  const methods = [received]
  for (const override of overrides) {
    const view = { method: received, headers: req.headers, url: req.url, body: req.body }
    await run(override, view, res)
    methods.push(view.method)
  }

  const rawQuery = safely(() => parseurl(req).query, '') || ''
  const query = [
    safely(() => qs.parse(rawQuery, { allowPrototypes: true, arrayLimit: 1000 }), {}),
    safely(() => querystring.parse(rawQuery), {})
  ]

  const header = {}
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]
    ;(header[name] = header[name] || []).push(req.rawHeaders[i + 1])
  }

  const rawPath = req.url.split('?')[0]
  const paths = [rawPath]
  const express = safely(() => parseurl(req).pathname, null) // req.path
  if (express !== null) paths.push(express)
  const whatwg = safely(() => new URL(req.url, 'http://x').pathname, null)
  if (whatwg !== null) paths.push(whatwg)
  for (const path of paths.slice()) {
    const decoded = safely(() => decodeURIComponent(path), null)
    if (decoded !== null) paths.push(decoded)
  }

  const unique = list => [...new Set(list)]
  const reading = {
    parser: 'node',
    method: received,
    methods: unique(methods),
    query_accounts: unique(query.flatMap(accounts)),
    header_accounts: unique(req.headersDistinct['x-account-id'] || []),
    // cookie-parser's reading: cookie.parse of the joined fields, the
    // first of one name wins, values decoded and unquoted.
    cookie_accounts: unique(accounts(safely(() => cookie.parse(req.headers.cookie || ''), {}))),
    body_accounts: unique(accounts(req.body)),
    paths: unique(paths),
    header
  }
  const json = JSON.stringify(reading)
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) })
  res.end(json)
}

const port = Number(process.argv[2])
const server = http.createServer((req, res) => {
  echo(req, res).catch(err => {
    console.error(err)
    if (!res.headersSent) res.writeHead(500)
    res.end()
  })
})
server.listen(port, '127.0.0.1')
