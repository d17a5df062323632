-- wrk script for forward proxies: wrk connects to the proxy given on its
-- command line and, by default, sends origin-form requests (GET /path).
-- A forward proxy needs the absolute form, as browsers send it:
--   GET http://origin.bench.example:PORT/1k HTTP/1.1
--   Host: origin.bench.example:PORT
-- BENCH_TARGET is that absolute URL; every peer gets the same bytes.
local target = os.getenv("BENCH_TARGET")
if target == nil or target == "" then
  error("BENCH_TARGET must be set to an absolute http:// URL")
end
local host = target:match("^http://([^/]+)")
if host == nil then
  error("BENCH_TARGET must start with http://, got " .. target)
end
wrk.method = "GET"
wrk.path = target
wrk.headers["Host"] = host
wrk.headers["User-Agent"] = "wrk"
wrk.headers["Accept"] = "*/*"
