-- wrk script: every request carries the next token from the file given as
-- the first script argument, so no two requests (within the file's length)
-- repeat a token and the verified-token cache cannot help.
local tokens = {}
local i = 0

function init(args)
	for line in io.lines(args[1]) do
		tokens[#tokens + 1] = "Bearer " .. line
	end
	i = math.random(#tokens)
end

function request()
	i = i + 1
	if i > #tokens then i = 1 end
	return wrk.format("GET", "/", { ["Authorization"] = tokens[i] })
end
