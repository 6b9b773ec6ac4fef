-- wrk script for bench/http.sh: every request is a GET / whose Host header
-- rotates over the hosts given after "--" (one host: always that one). Every
-- variant runs through this script, so the client does the same work for all.
local hosts = {}
local i = 0

function init(args)
  for _, h in ipairs(args) do
    hosts[#hosts + 1] = h
  end
  if #hosts == 0 then
    error("hosts.lua: give the Host values after --")
  end
end

function request()
  i = i % #hosts + 1
  wrk.headers["Host"] = hosts[i]
  return wrk.format("GET", "/")
end
