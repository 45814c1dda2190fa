//! The Lua scripts: each one is a single per-user step, atomic on that user's Redis Cluster slot (every key it
//! names carries the same `{alias}` hash tag; see the key layout in the module documentation of `cluster`).
//!
//! Replies are arrays of strings (or nil), so the Rust side parses one shape. A claim, when a script hands one
//! out, is the 8 strings `token, reg, ip, port, epoch, age_ms, head, entry` (see `backend::parse_claim`);
//! a job is the 6 strings `ip, port, epoch, age_ms, head, entry`.

use redis::Script;

/// A connection whose activation (the step after the CONNECT reply) never reached Redis, because Redis failed
/// just then, is taken as activated this long after its CONNECT: longer than writing a reply can take
/// (`server::net::REPLY_WRITE_TIMEOUT`, 3 s), so an ordinary CONNECT is always activated by its handler first.
pub const ACTIVATION_FALLBACK_MS: u64 = 10_000;

/// Helpers shared by the scripts.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The push to attempt now for the user of hash u and queue q: the head, while the listener is ready.
local function job(u, q)
  local f = redis.call('HMGET', u, 'ip', 'port', 'epoch', 'ready', 'head', 'since')
  if not f[1] then return false end
  local now = now_ms()
  local ready = f[4]
  if not ready and f[6] and now - tonumber(f[6]) > ACTIVATION_FALLBACK_MS then ready = f[6] end
  if not ready then return false end
  local e = redis.call('LINDEX', q, 0)
  if not e then return false end
  local age = now - tonumber(ready)
  if age < 0 then age = 0 end
  return {f[1], f[2], f[3], string.format('%d', age), f[5], e}
end
-- Claims the user's deliveries when it is ready, idle and has something queued. The claim key c holds the
-- fencing token and expires after ttl ms unless its holder renews it.
local function claim(u, q, c, ttl)
  if redis.call('EXISTS', c) == 1 then return false end
  local j = job(u, q)
  if not j then return false end
  local tok = redis.call('HINCRBY', u, 'tok', 1)
  redis.call('SET', c, tok, 'PX', ttl)
  local reg = redis.call('HGET', u, 'reg')
  return {string.format('%d', tok), reg, j[1], j[2], j[3], j[4], j[5], j[6]}
end
-- Whether the claim (registration reg, token tok) is still the current one; renews its expiry when due.
local function holds(u, c, reg, tok, ttl)
  if redis.call('HGET', u, 'reg') ~= reg then return false end
  if redis.call('GET', c) ~= tok then return false end
  -- Renewed once half its life is gone: a step that only reads stays a read (no append-only write).
  if redis.call('PTTL', c) < tonumber(ttl) / 2 then redis.call('PEXPIRE', c, ttl) end
  return true
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("local ACTIVATION_FALLBACK_MS = {ACTIVATION_FALLBACK_MS}\n{PRELUDE}\n{body}"))
}

/// Every script, loaded once per node (EVALSHA, EVAL when Redis does not know it yet).
pub(super) struct Scripts {
    pub register: Script,
    pub unregister: Script,
    pub connect: Script,
    pub activate: Script,
    pub kick: Script,
    pub disconnect: Script,
    pub peek: Script,
    pub next_id: Script,
    pub enqueue: Script,
    pub next_job: Script,
    pub delivered: Script,
    pub ack: Script,
    pub ack_passed: Script,
    pub failed: Script,
    pub release: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            // KEYS u q c p · ARGV full name, birth date, registration number.
            register: script(
                r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'1'} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'date', ARGV[2], 'last', '0', 'reg', ARGV[3], 'head', '0', 'tok', '0')
return {'0'}"#,
            ),
            // KEYS u q c p · ARGV origin IP ('' = no check).
            unregister: script(
                r#"
local f = redis.call('HMGET', KEYS[1], 'reg', 'ip')
if not f[1] then return {'1'} end
if f[2] and ARGV[1] ~= '' and f[2] ~= ARGV[1] then return {'2'} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'0'}"#,
            ),
            // KEYS u · ARGV ip, port, epoch of the dead session to replace ('' = an ordinary CONNECT).
            connect: script(
                r#"
local f = redis.call('HMGET', KEYS[1], 'reg', 'epoch')
if not f[1] then return {'1'} end
if f[2] and (ARGV[3] == '' or f[2] ~= ARGV[3]) then return {'2'} end
local e = redis.call('HINCRBY', KEYS[1], 'tok', 1)
redis.call('HSET', KEYS[1], 'ip', ARGV[1], 'port', ARGV[2], 'epoch', e, 'since', string.format('%d', now_ms()))
redis.call('HDEL', KEYS[1], 'ready')
return {'0', string.format('%d', e), f[1]}"#,
            ),
            // KEYS u q c · ARGV epoch, claim ttl. Nil, or a claim.
            activate: script(
                r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'ready', string.format('%d', now_ms()))
return claim(KEYS[1], KEYS[2], KEYS[3], ARGV[2])"#,
            ),
            // The sweeper: KEYS u q c p · ARGV claim ttl. A claim (connected, ready, idle, something queued); or,
            // when idle with acknowledgements left pending by a dead node, {'owed', token, reg, the first one};
            // or nil.
            kick: script(
                r#"
local t = claim(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
if t then return t end
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('LLEN', KEYS[4]) == 0 then return false end
local tok = redis.call('HINCRBY', KEYS[1], 'tok', 1)
redis.call('SET', KEYS[3], tok, 'PX', ARGV[1])
return {'owed', string.format('%d', tok), redis.call('HGET', KEYS[1], 'reg'), redis.call('LINDEX', KEYS[4], 0)}"#,
            ),
            // KEYS u · ARGV origin IP ('' = no check).
            disconnect: script(
                r#"
local f = redis.call('HMGET', KEYS[1], 'reg', 'ip')
if not f[1] then return {'1'} end
if not f[2] then return {'2'} end
if ARGV[1] ~= '' and f[2] ~= ARGV[1] then return {'3'} end
redis.call('HDEL', KEYS[1], 'ip', 'port', 'epoch', 'ready', 'since')
return {'0'}"#,
            ),
            // Before a SEND, the recipient: KEYS u q · {registered (0/1), queue length}.
            peek: Script::new(r#"return {redis.call('EXISTS', KEYS[1]), redis.call('LLEN', KEYS[2])}"#),
            // The sender's half of a SEND. KEYS u (sender) · ARGV origin IP, '1' when the recipient's queue is
            // full. {'0', id} consumes the id; any other answer changes nothing.
            next_id: script(
                r#"
local f = redis.call('HMGET', KEYS[1], 'reg', 'ip', 'last')
if not f[1] then return {'1'} end
if not f[2] or (ARGV[1] ~= '' and f[2] ~= ARGV[1]) or ARGV[2] == '1' then return {'2'} end
local id = tonumber(f[3]) + 1
if id > 4294967295 then id = 1 end
redis.call('HSET', KEYS[1], 'last', string.format('%d', id))
return {'0', string.format('%d', id)}"#,
            ),
            // The recipient's half. KEYS u q c (recipient) · ARGV entry, max queue, claim ttl.
            // {'0', connected, claim...}, or {'1'} / {'2'}.
            enqueue: script(
                r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'1'} end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {'2'} end
redis.call('RPUSH', KEYS[2], ARGV[1])
local out = {'0', string.format('%d', redis.call('HEXISTS', KEYS[1], 'epoch'))}
local t = claim(KEYS[1], KEYS[2], KEYS[3], ARGV[3])
if t then for _, v in ipairs(t) do table.insert(out, v) end end
return out"#,
            ),
            // KEYS u q c · ARGV reg, token, claim ttl. {'job', job...}; {'done'} releases the claim; {'gone'}: the
            // claim is not this ticket's any more.
            next_job: script(
                r#"
if not holds(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return {'gone'} end
local j = job(KEYS[1], KEYS[2])
if not j then redis.call('DEL', KEYS[3]) return {'done'} end
return {'job', j[1], j[2], j[3], j[4], j[5], j[6]}"#,
            ),
            // A successful push. KEYS u q c p · ARGV reg, token, claim ttl, entry number, pending ack ('' for
            // none). Pops the head if it is still that entry and records the ack it owes, in one step; keeps the
            // claim while acks are owed (the caller passes them on, then releases it): {'job', job..., owed} or
            // {'done', owed} (owed: the first pending ack, '' for none); {'released'} when nothing is left to do
            // (the claim is gone); {'gone'} when it was not this ticket's.
            delivered: script(
                r#"
if not holds(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return {'gone'} end
if redis.call('HGET', KEYS[1], 'head') == ARGV[4] then
  redis.call('LPOP', KEYS[2])
  redis.call('HINCRBY', KEYS[1], 'head', 1)
  if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[5]) end
end
local owed = redis.call('LINDEX', KEYS[4], 0) or ''
local j = job(KEYS[1], KEYS[2])
if not j and owed == '' then redis.call('DEL', KEYS[3]) return {'released'} end
if not j then return {'done', owed} end
return {'job', j[1], j[2], j[3], j[4], j[5], j[6], owed}"#,
            ),
            // An acknowledgement for the sender. KEYS u q c (sender) · ARGV entry, max queue, claim ttl.
            // {'0', claim...}, {'full'} or {'gone'}.
            ack: script(
                r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {'full'} end
redis.call('RPUSH', KEYS[2], ARGV[1])
local out = {'0'}
local t = claim(KEYS[1], KEYS[2], KEYS[3], ARGV[3])
if t then for _, v in ipairs(t) do table.insert(out, v) end end
return out"#,
            ),
            // The pending ack at the head of p was passed on. KEYS p · ARGV that entry. {the next one or ''}.
            ack_passed: script(
                r#"
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
return {redis.call('LINDEX', KEYS[1], 0) or ''}"#,
            ),
            // A failed push. KEYS u q c · ARGV reg, token, claim ttl, the job's epoch.
            // {'go'}: reconnected meanwhile, keep the claim; {'off'}: marked disconnected; {'stop'} / {'gone'}.
            failed: script(
                r#"
if not holds(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return {'gone'} end
local off = 'stop'
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[4] then
  redis.call('HDEL', KEYS[1], 'ip', 'port', 'epoch', 'ready', 'since')
  off = 'off'
end
if redis.call('HEXISTS', KEYS[1], 'epoch') == 1 then return {'go'} end
redis.call('DEL', KEYS[3])
return {off}"#,
            ),
            // Drops a claim if it is still this token's. KEYS c · ARGV token.
            release: script(
                r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return {'0'}"#,
            ),
        }
    }
}
