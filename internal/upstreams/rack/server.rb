# The rack upstream: `ruby server.rb PORT` serves, with Rack 2.2 on WEBrick,
# an app behind Rack::MethodOverride that answers with what Rack read from
# the request (the echo format is in ../doc.go).
#
# What Rack does with the request, all in Rack's own code:
#   - the query: Request#GET, parse_nested_query splitting on "&" and ";";
#     an invalid %-escape makes the whole query unreadable (it raises);
#   - the body: Request#POST, for urlencoded and multipart bodies and for a
#     POST without a Content-Type; Rack does not parse JSON;
#   - the method: MethodOverride turns a POST into the _method of the body,
#     else the X-HTTP-Method-Override header, if that is one of its
#     HTTP_METHODS; it never looks at the query string.
require 'json'
require 'rack'
require 'webrick'

# Strings from the request may hold any bytes; JSON needs UTF-8.
def text(value)
  value.to_s.dup.force_encoding(Encoding::UTF_8).scrub("\uFFFD")
end

def leaves(value)
  case value
  when Hash
    # A multipart file part is a Hash holding the uploaded Tempfile.
    value.key?(:tempfile) ? [] : value.values.flat_map { |v| leaves(v) }
  when Array then value.flat_map { |v| leaves(v) }
  else [text(value)]
  end
end

# Every value of the key accountId, under any spelling of its case
# (String#downcase and #upcase are Unicode-aware).
def accounts(params)
  return [] unless params.is_a?(Hash)

  params.flat_map do |key, value|
    name = text(key)
    name.downcase == 'accountid' || name.upcase == 'ACCOUNTID' ? leaves(value) : []
  end
end

# Rack raises on what it cannot parse; the app then reads nothing.
def readable
  yield
rescue StandardError
  {}
end

class Echo
  def call(env)
    request = Rack::Request.new(env)
    query = readable { request.GET }
    body = readable { request.POST }

    methods = [env['REQUEST_METHOD'], env['rack.methodoverride.original_method']]
    original = env['rack.methodoverride.original_method'] || env['REQUEST_METHOD']
    # MethodOverride reads the header only when the body has no _method;
    # report it whenever it could have applied.
    if original == 'POST' && env['HTTP_X_HTTP_METHOD_OVERRIDE']
      methods << text(env['HTTP_X_HTTP_METHOD_OVERRIDE']).upcase
    end

    # Rack knows headers only by their CGI names: X-Account-Id and
    # X_Account_Id are both HTTP_X_ACCOUNT_ID, repeated headers are joined
    # with ", " by WEBrick.
    header = {}
    env.each do |name, value|
      next unless name.start_with?('HTTP_') || %w[CONTENT_TYPE CONTENT_LENGTH].include?(name)

      header[name] = [text(value)]
    end

    path = env['PATH_INFO'].to_s
    paths = [path, Rack::Utils.unescape_path(path), env['REQUEST_PATH']]
    if env['REQUEST_URI']
      paths << readable { URI(env['REQUEST_URI']).path }
    end

    reading = {
      parser: 'rack',
      method: text(env['REQUEST_METHOD']),
      methods: methods.compact.map { |m| text(m) }.uniq,
      query_accounts: accounts(query).uniq,
      header_accounts: [env['HTTP_X_ACCOUNT_ID']].compact.map { |v| text(v) },
      cookie_accounts: accounts(readable { Rack::Request.new(env).cookies }).uniq,
      body_accounts: accounts(body).uniq,
      paths: paths.select { |p| p.is_a?(String) }.map { |p| text(p) }.uniq,
      header: header
    }
    [200, { 'Content-Type' => 'application/json' }, [JSON.generate(reading)]]
  end
end

port = Integer(ARGV.fetch(0))
Rack::Handler::WEBrick.run(
  Rack::MethodOverride.new(Echo.new),
  Host: '127.0.0.1',
  Port: port,
  DoNotReverseLookup: true,
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN),
  AccessLog: []
) do |server|
  # WEBrick writes headers and body separately; without TCP_NODELAY
  # (inherited by accepted sockets) each keep-alive answer would wait for
  # the peer's delayed ACK.
  server.listeners.each { |l| l.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1) }
end
