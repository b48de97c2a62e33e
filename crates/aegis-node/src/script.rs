//! Lua scripts (`EVAL`, `EVALSHA`): Lua 5.1 with Redis's `redis` library, run by every
//! replica as it applies the script's log entry.
//!
//! A script runs as one apply, so it is atomic as in Redis: no other command runs
//! between its calls, and what it writes before an error stays written. Every replica
//! must reach the same result from the same entry, so a script sees nothing that
//! differs between them:
//!
//! - a fresh Lua state per run, holding only the base, `table`, `string` and `math`
//!   libraries (no `io`, `os`, `debug`, `dofile`, `loadfile`, `print`), `redis` and
//!   `cjson` (JSON as lua-cjson 2.1 writes and reads it), so nothing a script leaves
//!   behind reaches the next;
//! - `math.random` is the `rand48` generator Redis's scripts draw from, seeded with 0
//!   at the start of every run (Redis 7 carries its state from run to run, which only
//!   its replication by effects can afford);
//! - `TIME` answers the log entry's time;
//! - a run is stopped after [`INSTRUCTIONS_MAX`] Lua instructions and refused more than
//!   [`MEMORY_MAX`] bytes, counts that are the same on every replica (a clock would not
//!   be).
//!
//! The instruction count is checked between Lua instructions, so it does not stop one
//! long call into the C library: a crafted pattern can keep `string.find` or `gsub`
//! backtracking for hours, which stalls every replica on the entry (and again after a
//! restart). Redis cannot stop such a call either; scripts should come from trusted
//! clients.
//!
//! Globals are protected as in Redis 7: reading one that is not there, or making one,
//! is an error. The iteration order of `pairs` over a table keyed by tables or
//! functions follows their addresses, which differ between replicas: a script that
//! writes in that order makes the replicas differ, so scripts must not.

use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState,
};

use crate::command::ReplyItem;

mod json;

/// The most Lua instructions one run may execute (about a second of work).
pub const INSTRUCTIONS_MAX: u64 = 200_000_000;

/// The most memory one run's Lua state may hold, in bytes.
pub const MEMORY_MAX: usize = 64 << 20;

/// The memory the error handler may use past [`MEMORY_MAX`].
const HANDLER_MEMORY: usize = 1 << 20;

/// How often the instruction count is checked.
const INSTRUCTIONS_PER_CHECK: u32 = 10_000;

/// The deepest a script's reply may nest.
const REPLY_DEPTH_MAX: usize = 64;

/// What a command a script calls answers, or why it could not run.
pub(crate) enum Called {
    /// The command's reply, in RESP2.
    Reply(Vec<u8>),
    /// The storage engine failed: the run stops and the apply fails.
    Failed(crate::store::StoreError),
}

/// Runs `script` with `KEYS` and `ARGV`; `call` runs each command the script calls
/// (its arguments as given) and answers its RESP2 reply. The script's reply, or its
/// error as an error reply.
///
/// # Errors
/// The [`crate::store::StoreError`] a call failed with.
pub(crate) fn run(
    script: &[u8],
    keys: &[Vec<u8>],
    args: &[Vec<u8>],
    call: &mut dyn FnMut(Vec<Vec<u8>>) -> Called,
) -> Result<Vec<ReplyItem>, crate::store::StoreError> {
    let failed = std::cell::RefCell::new(None);
    let reply = run_lua(script, keys, args, call, &failed);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(reply.unwrap_or_else(|message| vec![ReplyItem::Error(message.into_bytes())]))
}

/// `Err` with an error reply's message; a call whose storage engine failed leaves its
/// error in `failed` and fails every call after it.
fn run_lua(
    script: &[u8],
    keys: &[Vec<u8>],
    args: &[Vec<u8>],
    call: &mut dyn FnMut(Vec<Vec<u8>>) -> Called,
    failed: &std::cell::RefCell<Option<crate::store::StoreError>>,
) -> Result<Vec<ReplyItem>, String> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::new(),
    )
    .map_err(|e| format!("ERR cannot start a script: {e}"))?;
    let setup = |e: mlua::Error| format!("ERR cannot start a script: {e}");
    lua.set_memory_limit(MEMORY_MAX).map_err(setup)?;
    let executed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = executed.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(INSTRUCTIONS_PER_CHECK),
        move |_, _| {
            let done = counted.fetch_add(
                u64::from(INSTRUCTIONS_PER_CHECK),
                std::sync::atomic::Ordering::Relaxed,
            );
            if done >= INSTRUCTIONS_MAX {
                return Err(mlua::Error::runtime("script ran too long"));
            }
            Ok(VmState::Continue)
        },
    );
    let killed = {
        let executed = executed.clone();
        move || executed.load(std::sync::atomic::Ordering::Relaxed) >= INSTRUCTIONS_MAX
    };
    let call = std::cell::RefCell::new(call);
    let run_call = |lua: &Lua, argv: MultiValue| -> mlua::Result<Value> {
        if failed.borrow().is_some() {
            return Err(mlua::Error::runtime("the script was stopped"));
        }
        match call_arguments(lua, argv)? {
            Err(message) => error_table(lua, message.as_bytes()),
            Ok(argv) => match (call.borrow_mut())(argv) {
                Called::Reply(bytes) => resp_to_lua(lua, &bytes),
                Called::Failed(e) => {
                    *failed.borrow_mut() = Some(e);
                    Err(mlua::Error::runtime("the storage engine failed"))
                }
            },
        }
    };
    let outcome = lua.scope(|scope| {
        let globals = lua.globals();
        prepare(&lua, &globals, keys, args)?;
        let redis: Table = globals.raw_get("redis")?;
        let pcall = scope.create_function(|lua, argv: MultiValue| run_call(lua, argv))?;
        // A C function, as Redis's is: a failed call is raised from it, so the script's
        // line is still on the stack (a Lua function would be tail-called away).
        let raising = scope.create_function(|lua, argv: MultiValue| {
            let reply = run_call(lua, argv)?;
            if let Value::Table(table) = &reply
                && let Value::String(err) = table.raw_get::<Value>("err")?
            {
                return Err(mlua::Error::external(CallError(err.to_string_lossy())));
            }
            Ok(reply)
        })?;
        redis.raw_set("pcall", pcall)?;
        redis.raw_set("call", raising)?;
        let real_xpcall: Function = globals.raw_get("xpcall")?;
        protect_globals(&lua, killed.clone())?;
        let function = lua
            .load(script)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| compile_error(&e))?;
        // Where an uncaught error was raised, as Redis's error handler notes it.
        let handler = lua.create_function(|lua, error: Value| {
            // Room to report a run that ran out of memory.
            lua.set_memory_limit(MEMORY_MAX + HANDLER_MEMORY)?;
            let table = match error {
                Value::Table(table) if table.raw_get::<Value>("err")?.is_string() => table,
                other => {
                    let table = lua.create_table()?;
                    table.raw_set("err", uncaught_message(lua, &other))?;
                    table
                }
            };
            if table.raw_get::<Value>("source")?.is_nil() {
                let (source, line) = location(lua, 1);
                table.raw_set("source", source)?;
                table.raw_set("line", line)?;
            }
            Ok(table)
        })?;
        let (ok, value): (bool, Value) = real_xpcall.call((function, handler))?;
        Ok(if ok {
            lua_to_reply(&value)
        } else {
            Err(error_message(&value, &sha1_hex(script)))
        })
    });
    if killed() {
        return Err(format!(
            "ERR Script killed: it ran more than {INSTRUCTIONS_MAX} Lua instructions"
        ));
    }
    match outcome {
        Ok(reply) => reply,
        Err(mlua::Error::MemoryError(_)) => Err("ERR script ran out of memory".to_owned()),
        Err(e) => Err(match e {
            mlua::Error::SyntaxError { message, .. } => {
                format!("ERR Error compiling script (new function): {message}")
            }
            other => format!("ERR {other}"),
        }),
    }
}

fn compile_error(e: &mlua::Error) -> mlua::Error {
    match e {
        mlua::Error::SyntaxError { .. } => e.clone(),
        other => mlua::Error::SyntaxError {
            message: other.to_string(),
            incomplete_input: false,
        },
    }
}

/// The error reply of a script that failed (`value` as the error handler made it), with
/// where it failed, as Redis 7 writes it: `<error> script: <sha>, on @user_script:<line>.`
fn error_message(value: &Value, sha: &str) -> String {
    let table = match value {
        Value::Table(table) => table,
        // Lua reports running out of memory without calling the error handler.
        Value::String(text) => return format!("ERR {}", text.to_string_lossy()),
        _ => return "ERR script failed".to_owned(),
    };
    let text = |key: &str| match table.raw_get::<Value>(key) {
        Ok(Value::String(s)) => Some(s.to_string_lossy()),
        Ok(Value::Number(n)) => Some((n as i64).to_string()),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        _ => None,
    };
    let err = text("err").unwrap_or_else(|| "ERR script failed".to_owned());
    match (text("source"), text("line")) {
        (Some(source), Some(line)) => format!("{err} script: {sha}, on {source}:{line}."),
        _ => err,
    }
}

/// The libraries and globals a script finds.
fn prepare(lua: &Lua, globals: &Table, keys: &[Vec<u8>], args: &[Vec<u8>]) -> mlua::Result<()> {
    // Lua 5.1 runs precompiled chunks without checking them, and a crafted one can
    // corrupt memory: only source is loaded (`load`, which reads a chunk in pieces, is
    // gone; `loadstring` takes text alone). Nor are there coroutines: the count of
    // instructions that stops a run does not reach into one.
    for name in ["dofile", "loadfile", "load", "print", "coroutine"] {
        globals.raw_set(name, Value::Nil)?;
    }
    globals.raw_set(
        "loadstring",
        lua.create_function(|lua, (text, name): (mlua::String, Option<String>)| {
            let chunk = lua
                .load(text.as_bytes().to_vec())
                .set_name(name.unwrap_or_else(|| "=(loadstring)".to_owned()))
                .set_mode(ChunkMode::Text);
            Ok(match chunk.into_function() {
                Ok(function) => (Value::Function(function), Value::Nil),
                Err(e) => (Value::Nil, Value::String(lua.create_string(e.to_string())?)),
            })
        })?,
    )?;
    let strings = |items: &[Vec<u8>]| -> mlua::Result<Table> {
        let table = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            table.raw_set(i + 1, lua.create_string(item)?)?;
        }
        Ok(table)
    };
    globals.raw_set("KEYS", strings(keys)?)?;
    globals.raw_set("ARGV", strings(args)?)?;

    // math.random as Redis's: rand48, seeded with 0 for every run.
    let math: Table = globals.raw_get("math")?;
    let state = std::rc::Rc::new(std::cell::Cell::new(Rand48::seeded(0)));
    let random_state = state.clone();
    math.raw_set(
        "random",
        lua.create_function(move |_, bounds: MultiValue| {
            let mut rng = random_state.get();
            let r = rng.fraction();
            random_state.set(rng);
            let bound = |v: &Value| match v {
                Value::Number(n) => Ok(*n as i32),
                Value::Integer(n) => Ok(*n as i32),
                _ => Err(fail("bad argument to 'random' (number expected)")),
            };
            match bounds.len() {
                0 => Ok(r),
                1 => {
                    let u = bound(&bounds[0])?;
                    if u < 1 {
                        return Err(fail("bad argument #1 to 'random' (interval is empty)"));
                    }
                    Ok((r * f64::from(u)).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (bound(&bounds[0])?, bound(&bounds[1])?);
                    if l > u {
                        return Err(fail("bad argument #2 to 'random' (interval is empty)"));
                    }
                    Ok((r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l))
                }
                _ => Err(fail("wrong number of arguments")),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |_, seed: f64| {
            state.set(Rand48::seeded(seed as i32));
            Ok(())
        })?,
    )?;

    let redis = lua.create_table()?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, message: mlua::String| {
            let message = message.as_bytes();
            let message = message.strip_prefix(b"-").unwrap_or(&message);
            error_table(lua, message)
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, message: mlua::String| {
            let table = lua.create_table()?;
            table.raw_set("ok", message)?;
            Ok(Value::Table(table))
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, text: mlua::String| Ok(sha1_hex(&text.as_bytes())))?,
    )?;
    redis.raw_set("log", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.raw_set(
        "setresp",
        lua.create_function(|_, version: i64| match version {
            2 => Ok(()),
            _ => Err(fail("RESP version must be 2 here")),
        })?,
    )?;
    for (name, value) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_SLAVE", 1),
        ("REPL_REPLICA", 1),
        ("REPL_AOF", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, value)?;
    }
    globals.raw_set("redis", redis)?;
    json::install(lua, globals)
}

/// `pcall` and `xpcall` answer a caught error reply as its message, as in Redis 7.0,
/// and let a stopped run's error through (`stopped` says whether the run was stopped),
/// so a script cannot go on by catching it; and globals are protected, as in Redis 7.
fn protect_globals(lua: &Lua, stopped: impl Fn() -> bool + Clone + 'static) -> mlua::Result<()> {
    let globals = lua.globals();
    // A caught error reply is its message, as in Redis 7.0; a stopped run's error is
    // raised again.
    let catching = |real: Function| {
        let stopped = stopped.clone();
        lua.create_function(move |lua, args: MultiValue| {
            let mut results: MultiValue = real.call(args)?;
            if stopped() {
                return Err(fail("the script was stopped"));
            }
            if let (Some(Value::Boolean(false)), Some(error)) = (results.front(), results.get(1)) {
                let message = match error {
                    Value::Table(table) => match table.raw_get::<Value>("err")? {
                        Value::String(err) => Some(Value::String(err)),
                        _ => None,
                    },
                    Value::Error(e) => Some(Value::String(lua.create_string(error_text(e))?)),
                    _ => None,
                };
                if let Some(message) = message {
                    results[1] = message;
                }
            }
            Ok(results)
        })
    };
    let pcall = catching(globals.raw_get("pcall")?)?;
    let xpcall = catching(globals.raw_get("xpcall")?)?;
    globals.raw_set("pcall", pcall)?;
    globals.raw_set("xpcall", xpcall)?;
    let guard = lua.create_table()?;
    guard.raw_set(
        "__index",
        lua.create_function(|lua, (_, name): (Value, Value)| -> mlua::Result<()> {
            let name = lua.coerce_string(name).ok().flatten();
            let name = name.map(|n| n.to_string_lossy()).unwrap_or_default();
            Err(fail_at(
                lua,
                format!("Script attempted to access nonexistent global variable '{name}'"),
            ))
        })?,
    )?;
    guard.raw_set(
        "__newindex",
        lua.create_function(|lua, _: MultiValue| -> mlua::Result<()> {
            Err(fail_at(lua, "Attempt to modify a readonly table"))
        })?,
    )?;
    globals.set_metatable(Some(guard));
    Ok(())
}

/// The source and line of the function `level` up the stack from the running Rust
/// function, or of its caller if that one is a C function, as Redis reports where a
/// script failed.
fn location(lua: &Lua, level: usize) -> (Option<String>, Option<i64>) {
    let at = |level| {
        lua.inspect_stack(level).map(|frame| {
            let source = frame.source();
            (
                source.what,
                source.source.map(|s| s.into_owned()),
                i64::from(frame.curr_line()),
            )
        })
    };
    // Past C functions (Rust's among them), to the script's own line.
    let mut level = level;
    loop {
        match at(level) {
            Some(("C", ..)) => level += 1,
            found => {
                return found.map_or((None, None), |(_, source, line)| (source, Some(line)));
            }
        }
    }
}

/// An error a library function raises, as its message alone.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

fn fail(message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Failure(message.into()))
}

/// A library function's error, prefixed with where the script called it, as
/// `luaL_error` writes it (nothing when a C function, such as `pcall`, called it).
fn fail_at(lua: &Lua, message: impl std::fmt::Display) -> mlua::Error {
    let place = lua.inspect_stack(1).and_then(|frame| {
        let source = frame.source();
        (source.what != "C").then(|| {
            let short = source.short_src.map(|s| s.into_owned()).unwrap_or_default();
            format!("{short}:{}: ", frame.curr_line())
        })
    });
    fail(format!("{}{message}", place.unwrap_or_default()))
}

/// The error a failed `redis.call` raises: the command's error reply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CallError(String);

/// The failed call an error raised from Rust is, if it is one.
fn call_error(e: &mlua::Error) -> Option<&CallError> {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            call_error(cause)
        }
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<CallError>(),
        _ => None,
    }
}

/// The text of an error raised from Rust, as a script that catches it sees it: a
/// failed call's reply, or the error's own message.
fn error_text(e: &mlua::Error) -> String {
    match (call_error(e), e) {
        (Some(CallError(message)), _) => message.clone(),
        (None, mlua::Error::CallbackError { cause, .. }) => cause.to_string(),
        (None, other) => other.to_string(),
    }
}

/// The error reply for an error value no one caught: a failed call's reply as it is (it
/// has its code), anything else under `ERR`, as Redis's error handler makes it.
fn uncaught_message(lua: &Lua, error: &Value) -> String {
    match error {
        Value::Error(e) => match call_error(e) {
            Some(CallError(message)) => message.clone(),
            None => format!("ERR {}", error_text(e)),
        },
        other => match lua.coerce_string(other.clone()) {
            Ok(Some(text)) => format!("ERR {}", text.to_string_lossy()),
            _ => "ERR script failed".to_owned(),
        },
    }
}

/// A table `{err = message}`.
fn error_table(lua: &Lua, message: &[u8]) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set("err", lua.create_string(message)?)?;
    Ok(Value::Table(table))
}

/// The arguments of `redis.call`: strings, and numbers as Lua writes them; `Err` with
/// the error reply for anything else.
fn call_arguments(lua: &Lua, argv: MultiValue) -> mlua::Result<Result<Vec<Vec<u8>>, String>> {
    if argv.is_empty() {
        return Ok(Err(
            "ERR Please specify at least one argument for this redis lib call".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(argv.len());
    for value in argv {
        match value {
            Value::String(_) | Value::Number(_) | Value::Integer(_) => {
                let text = lua.coerce_string(value)?.expect("a string or a number");
                out.push(text.as_bytes().to_vec());
            }
            _ => {
                return Ok(Err(
                    "ERR Lua redis lib command arguments must be strings or integers".to_owned(),
                ));
            }
        }
    }
    Ok(Ok(out))
}

/// A RESP2 reply as Lua sees it: integers as numbers, bulk strings as strings, a null
/// as `false`, arrays as tables, a status as `{ok = ...}`, an error as `{err = ...}`.
fn resp_to_lua(lua: &Lua, bytes: &[u8]) -> mlua::Result<Value> {
    let mut at = 0;
    let value = resp_value(lua, bytes, &mut at)?;
    debug_assert_eq!(at, bytes.len(), "one reply");
    Ok(value)
}

fn resp_value(lua: &Lua, bytes: &[u8], at: &mut usize) -> mlua::Result<Value> {
    let bad = || mlua::Error::runtime("a reply that is not RESP2");
    let line_end = bytes[*at..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(bad)?
        + *at;
    let kind = bytes[*at];
    let line = &bytes[*at + 1..line_end];
    *at = line_end + 2;
    let number = || -> mlua::Result<i64> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)
    };
    Ok(match kind {
        b'+' => {
            let table = lua.create_table()?;
            table.raw_set("ok", lua.create_string(line)?)?;
            Value::Table(table)
        }
        b'-' => error_table(lua, line)?,
        b':' => Value::Number(number()? as f64),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Value::Boolean(false));
            }
            let len = usize::try_from(len).map_err(|_| bad())?;
            let body = bytes.get(*at..*at + len).ok_or_else(bad)?;
            *at += len + 2;
            Value::String(lua.create_string(body)?)
        }
        b'*' => {
            let len = number()?;
            if len < 0 {
                return Ok(Value::Boolean(false));
            }
            let table = lua.create_table()?;
            for i in 0..len {
                table.raw_set(i + 1, resp_value(lua, bytes, at)?)?;
            }
            Value::Table(table)
        }
        _ => return Err(bad()),
    })
}

/// A script's return value as a reply, by Redis's rules: a number is an integer
/// (truncated), a string a bulk string, `true` the integer 1, `false` and `nil` a null,
/// a table with `err` or `ok` an error or a status, any other table an array of its
/// items from 1 up to the first `nil`.
fn lua_to_reply(value: &Value) -> Result<Vec<ReplyItem>, String> {
    let mut out = Vec::new();
    reply_items(value, 0, &mut out)?;
    Ok(out)
}

fn reply_items(value: &Value, depth: usize, out: &mut Vec<ReplyItem>) -> Result<(), String> {
    if depth > REPLY_DEPTH_MAX {
        return Err("ERR reached lua stack limit".to_owned());
    }
    let text = |s: &mlua::String| s.as_bytes().to_vec();
    match value {
        Value::Number(n) => out.push(ReplyItem::Integer(*n as i64)),
        Value::Integer(n) => out.push(ReplyItem::Integer(*n)),
        Value::String(s) => out.push(ReplyItem::Bulk(text(s))),
        Value::Boolean(true) => out.push(ReplyItem::Integer(1)),
        Value::Table(table) => {
            if let Ok(Value::String(err)) = table.raw_get::<Value>("err") {
                out.push(ReplyItem::Error(text(&err)));
            } else if let Ok(Value::String(ok)) = table.raw_get::<Value>("ok") {
                out.push(ReplyItem::Status(text(&ok)));
            } else {
                let place = out.len();
                out.push(ReplyItem::Array(0));
                let mut len = 0u32;
                loop {
                    let item: Value = table
                        .raw_get(i64::from(len) + 1)
                        .map_err(|e| format!("ERR {e}"))?;
                    if item.is_nil() {
                        break;
                    }
                    reply_items(&item, depth + 1, out)?;
                    len += 1;
                }
                out[place] = ReplyItem::Array(len);
            }
        }
        _ => out.push(ReplyItem::Null),
    }
    Ok(())
}

/// `drand48`'s generator, as Redis's scripts draw from it.
#[derive(Debug, Clone, Copy)]
struct Rand48(u64);

impl Rand48 {
    const MASK: u64 = (1 << 48) - 1;

    fn seeded(seed: i32) -> Self {
        Self(((u64::from(seed as u32) << 16) | 0x330E) & Self::MASK)
    }

    /// The next 31-bit number.
    fn next(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 17) as i32
    }

    /// A number in [0, 1), as Redis's `math.random()` makes one.
    fn fraction(&mut self) -> f64 {
        let max = i32::MAX;
        f64::from(self.next() % max) / f64::from(max)
    }
}

/// The SHA-1 digest of `bytes` (FIPS 180-4) in lower-case hexadecimal: a script's name.
#[must_use]
pub fn sha1_hex(bytes: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = bytes.to_vec();
    let bit_len = (bytes.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().expect("four bytes"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(add);
        }
    }
    h.iter().map(|word| format!("{word:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_alone(script: &str, keys: &[&str], args: &[&str]) -> Vec<ReplyItem> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        run(script.as_bytes(), &keys, &args, &mut |argv| {
            // An echo of the call, as a bulk string of its words.
            let text = argv
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            Called::Reply(format!("${}\r\n{text}\r\n", text.len()).into_bytes())
        })
        .unwrap()
    }

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        // The name Redis gives `return 1`.
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn values_convert_as_redis_converts_them() {
        use ReplyItem::*;
        assert_eq!(run_alone("return 3.99", &[], &[]), [Integer(3)]);
        assert_eq!(run_alone("return 'x'", &[], &[]), [Bulk(b"x".to_vec())]);
        assert_eq!(run_alone("return true", &[], &[]), [Integer(1)]);
        assert_eq!(run_alone("return false", &[], &[]), [Null]);
        assert_eq!(run_alone("return nil", &[], &[]), [Null]);
        assert_eq!(
            run_alone("return {1, 'a', {2}, nil, 5}", &[], &[]),
            [
                Array(3),
                Integer(1),
                Bulk(b"a".to_vec()),
                Array(1),
                Integer(2)
            ]
        );
        assert_eq!(
            run_alone("return redis.status_reply('FINE')", &[], &[]),
            [Status(b"FINE".to_vec())]
        );
        assert_eq!(
            run_alone("return redis.error_reply('-BAD thing')", &[], &[]),
            [Error(b"BAD thing".to_vec())]
        );
        assert_eq!(
            run_alone("return {KEYS[1], ARGV[2]}", &["k"], &["a", "b"]),
            [Array(2), Bulk(b"k".to_vec()), Bulk(b"b".to_vec())]
        );
        // Calls pass numbers as Lua writes them.
        assert_eq!(
            run_alone("return redis.call('SET', KEYS[1], 1.5, 10)", &["k"], &[]),
            [Bulk(b"SET k 1.5 10".to_vec())]
        );
    }

    #[test]
    fn random_is_redis_s_sequence_every_run() {
        let first = run_alone(
            "return {math.random(100), math.random(100), math.random(100)}",
            &[],
            &[],
        );
        let again = run_alone(
            "return {math.random(100), math.random(100), math.random(100)}",
            &[],
            &[],
        );
        assert_eq!(first, again);
        // The first draw after srand48(0).
        let mut rng = Rand48::seeded(0);
        assert_eq!(rng.next(), 366_850_414);
    }

    #[test]
    fn faults_are_error_replies() {
        let error = |script: &str| match run_alone(script, &[], &[]).as_slice() {
            [ReplyItem::Error(message)] => String::from_utf8_lossy(message).into_owned(),
            other => panic!("{script}: {other:?}"),
        };
        assert!(error("return +").starts_with("ERR Error compiling script"));
        assert!(error("x = 1").contains("Attempt to modify a readonly table"));
        assert!(
            error("return y")
                .contains("Script attempted to access nonexistent global variable 'y'")
        );
        assert!(error("return redis.call()").contains("at least one argument"));
        assert!(error("return redis.call({})").contains("strings or integers"));
        assert!(error("error('boom')").contains("boom"));
        assert!(error("return dofile('/etc/passwd')").contains("dofile"));
        // Precompiled chunks are refused, from loadstring and as the script itself.
        assert_eq!(
            run_alone(
                "local f, e = loadstring(string.dump(function() return 1 end)) return {f == nil, e ~= nil}",
                &[],
                &[]
            ),
            [
                ReplyItem::Array(2),
                ReplyItem::Integer(1),
                ReplyItem::Integer(1)
            ]
        );
        assert_eq!(
            run_alone("return loadstring('return 7')()", &[], &[]),
            [ReplyItem::Integer(7)]
        );
        assert!(error("return load").contains("nonexistent global variable 'load'"));
        // No coroutines: the instruction count would not see inside one.
        assert!(
            error("local co = coroutine.wrap(function() while true do end end) co()")
                .contains("nonexistent global variable 'coroutine'")
        );
        assert!(error("return os.time()").contains("'os'"));
        assert!(error("while true do end").contains("Script killed"));
        assert!(
            error("local t = {} while true do t[#t + 1] = string.rep('x', 1024) end")
                .contains("memory")
        );
        assert!(
            error("local t = {} for i = 1, 100 do t = {t} end return t").contains("stack limit")
        );
        // A loop that catches every stop is stopped all the same.
        assert!(
            error("while true do pcall(function() while true do end end) end")
                .contains("Script killed")
        );
    }
}
