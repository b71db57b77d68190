-- wrk script: every request carries the next token of a slice of the file
-- given as the first script argument (second and third: the slice's first
-- line and its length; default the whole file). A token is never sent twice
-- unless the slice runs out: then it wraps, and done() prints "wrapped N"
-- so bench/run.sh can flag the figure (a cycle lets a cache hit).
local tokens = {}
local i = 0
-- A global, not a local: done() reads it through thread:get, which sees
-- only a thread's globals.
wrapped = 0

function init(args)
	local first = tonumber(args[2] or "1")
	local count = tonumber(args[3] or "0")
	local n = 0
	for line in io.lines(args[1]) do
		n = n + 1
		if n >= first and (count == 0 or n < first + count) then
			tokens[#tokens + 1] = "Bearer " .. line
		end
	end
end

function request()
	i = i + 1
	if i > #tokens then
		i = 1
		wrapped = wrapped + 1
	end
	return wrk.format("GET", "/", { ["Authorization"] = tokens[i] })
end

local threads = {}

function setup(thread)
	threads[#threads + 1] = thread
end

function done(summary, latency, requests)
	local w = 0
	for _, t in ipairs(threads) do
		w = w + (t:get("wrapped") or 0)
	end
	io.write(string.format("wrapped %d\n", w))
end
