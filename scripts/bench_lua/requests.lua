-- wrk script of scripts/bench: replays a file of prepared requests and counts answers by status.
--
--   wrk -t2 -c32 -d8s -s scripts/bench_lua/requests.lua http://127.0.0.1:PORT -- FILE THREADS
--
-- FILE holds one request a line, tab-separated: method, path, header name, header value, body
-- (header and body may be empty; a body is sent as application/json). Thread i of THREADS takes
-- lines i, i + THREADS, … so two threads never send the same line (claims: each a different
-- wish; a thread that has sent all of its lines starts them again, and those answers are the
-- expected 409s). At the end one line `BENCH_JSON {…}` carries the totals, the latency
-- percentiles (microseconds) and the answers by status (non-2xx also by error slug), for
-- scripts/bench.py to parse.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, count = args[1], tonumber(args[2] or "1")
  prepared = {}
  statuses = {}
  wrapped = 0
  local all = {}
  local n = 0
  for line in io.lines(path) do
    local method, target, name, value, body =
      line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      if name ~= "" then headers[name] = value end
      if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
      local text = wrk.format(method, target, headers, body)
      table.insert(all, text)
      if n % count == index then table.insert(prepared, text) end
      n = n + 1
    end
  end
  if #prepared == 0 then prepared = all end
  cursor = 0
end

function request()
  cursor = cursor + 1
  if cursor > #prepared then
    cursor = 1
    wrapped = wrapped + 1
  end
  return prepared[cursor]
end

function response(status, headers, body)
  local key = tostring(status)
  if status >= 300 and body then
    local slug = body:match('"error"%s*:%s*"([%w_]+)"')
    if slug then key = key .. ":" .. slug end
  end
  statuses[key] = (statuses[key] or 0) + 1
end

local function quote(text)
  return '"' .. tostring(text):gsub('[%c"\\]', "") .. '"'
end

function done(summary, latency, requests)
  local counts, laps = {}, 0
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("statuses") or {}) do
      counts[key] = (counts[key] or 0) + value
    end
    laps = laps + (thread:get("wrapped") or 0)
  end
  local parts = {}
  for key, value in pairs(counts) do
    table.insert(parts, quote(key) .. ": " .. value)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}, ' ..
    '"wrapped": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, laps, table.concat(parts, ", ")))
end
