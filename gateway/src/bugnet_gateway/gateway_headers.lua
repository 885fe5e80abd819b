-- First filter of the chain: it sees every request before anything else and every response
-- last, Envoy's own replies (401, 404, 413, 429, 503) included.

-- Every bucket refills its whole limit over this many seconds (render.py: fill_interval 60s).
local WINDOW_SECONDS = 60

function envoy_on_request(request_handle)
  -- Only jwt_authn may set the verified payload; a client-sent copy must never reach a service.
  request_handle:headers():remove("x-jwt-payload")
end

local function leading_number(value)
  if value == nil then
    return nil
  end
  return tonumber(string.match(value, "^%s*(%d+)"))
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local to_next_token = leading_number(headers:get("x-ratelimit-reset"))
  if to_next_token == nil then
    return
  end
  local limit = leading_number(headers:get("x-ratelimit-limit"))
  local remaining = leading_number(headers:get("x-ratelimit-remaining"))
  -- The contract promises the Unix time at which the window resets: for a bucket that refills
  -- continuously, the moment it is full again. Envoy itself only says when the next token comes.
  local to_full = to_next_token
  if limit ~= nil and remaining ~= nil and limit > 0 then
    to_full = math.max(to_next_token, math.ceil((limit - remaining) * WINDOW_SECONDS / limit))
  end
  headers:replace("x-ratelimit-reset", tostring(os.time() + to_full))
  if headers:get(":status") == "429" then
    headers:replace("retry-after", tostring(math.max(to_next_token, 1)))
  end
end
