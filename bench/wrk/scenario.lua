-- One wrk scenario, described by a file bench/load.py writes (passed after `--`).
--
-- bench/load.py runs wrk with as many threads as connections, so each thread holds exactly one
-- connection and this script's per-thread state is that connection's state: its own session
-- cookie, its own plan, and the plan version it last saw.
--
-- Scenario file: one setting per line, tab-separated `who <TAB> key <TAB> value`, where `who`
-- is `*` (every connection) or a connection number from 1. Keys:
--   method   GET or POST
--   header   "Name: value" (repeatable)
--   path     a request path (repeatable: the connection cycles through them)
--   body     a form body; {version} and {value} are filled in per request
--   value    a value to cycle through for {value} (repeatable): volumes, search terms
--   version  the plan version to start from; then read from each response's
--            HX-Trigger header, {"plan-version": {"version": N}}
--
-- Every response other than 2xx counts as a failure (wrk itself counts only >= 400), and
-- done() prints one JSON line, prefixed with BENCH_RESULT, for bench/load.py to read, with the
-- requests sent as well as answered (the difference was still in flight when wrk stopped).

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("connection", count)
  table.insert(threads, thread)
end

function init(args)
  method = "GET"
  headers = {}
  paths = {}
  values = {}
  body = nil
  version = 1
  sent = 0
  failed = 0
  first_failure = ""
  for line in io.lines(args[1]) do
    local who, key, value = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    if who and (who == "*" or tonumber(who) == connection) then
      if key == "method" then
        method = value
      elseif key == "header" then
        local name, content = value:match("^([^:]+):%s*(.*)$")
        headers[name] = content
      elseif key == "path" then
        table.insert(paths, value)
      elseif key == "body" then
        body = value
      elseif key == "value" then
        table.insert(values, value)
      elseif key == "version" then
        version = tonumber(value)
      end
    end
  end
  if #paths == 0 then
    error("scenario file names no path for connection " .. connection)
  end
end

function request()
  sent = sent + 1
  local path = paths[(sent - 1) % #paths + 1]
  local content = nil
  if body then
    content = body:gsub("{version}", tostring(version))
    if #values > 0 then
      content = content:gsub("{value}", values[(sent - 1) % #values + 1])
    end
  end
  return wrk.format(method, path, headers, content)
end

function response(status, response_headers, response_body)
  if status < 200 or status > 299 then
    failed = failed + 1
    if first_failure == "" then
      first_failure = tostring(status) .. " " .. paths[(sent - 1) % #paths + 1]
    end
  end
  local trigger = response_headers["HX-Trigger"] or response_headers["hx-trigger"]
  if trigger then
    local seen = trigger:match('"version"%s*:%s*(%d+)')
    if seen then
      version = tonumber(seen)
    end
  end
end

function done(summary, latency, requests)
  local failures = 0
  local total_sent = 0
  local example = ""
  for _, thread in ipairs(threads) do
    failures = failures + (thread:get("failed") or 0)
    total_sent = total_sent + (thread:get("sent") or 0)
    local first = thread:get("first_failure") or ""
    if example == "" and first ~= "" then
      example = first
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "sent": %d, "duration_us": %d, "bytes": %d, "non_2xx": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "first_failure": "%s"}\n',
    summary.requests, total_sent, summary.duration, summary.bytes, failures,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    (example:gsub('"', "'"))
  ))
end
