//! `cjson` for scripts: JSON written and read as the lua-cjson 2.1 that Redis embeds does
//! it with its default settings.
//!
//! - `cjson.encode(value)`: numbers as `%.14g` (NaN and infinities refused), strings with
//!   `"`, `\`, `/` and control characters escaped and other bytes as they are, a table
//!   whose keys are all whole numbers from 1 as an array (`null` for the gaps, refused if
//!   more than half gaps past index 10), any other table as an object (keys strings or
//!   numbers), `cjson.null` and `nil` as `null`; at most 1000 levels deep.
//! - `cjson.decode(text)`: objects and arrays as tables, `null` as `cjson.null`; at most
//!   1000 levels deep.

use mlua::{LightUserData, Lua, Table, Value};

use super::fail_at;

/// How deep a value may nest, either way.
const DEPTH_MAX: usize = 1000;

/// Puts `cjson` among `globals`.
pub(super) fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let cjson = lua.create_table()?;
    cjson.raw_set(
        "encode",
        lua.create_function(|lua, value: Value| {
            let mut out = Vec::new();
            encode(&value, 0, &mut out).map_err(|message| fail_at(lua, message))?;
            lua.create_string(out)
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, text: mlua::String| {
            let bytes = text.as_bytes();
            let mut reader = Reader {
                bytes: &bytes,
                at: 0,
            };
            let read = reader.value(lua, 0).and_then(|value| {
                reader.skip_space();
                if reader.at < bytes.len() {
                    return Err(Fault::Text(reader.expected("the end")));
                }
                Ok(value)
            });
            read.map_err(|fault| match fault {
                Fault::Text(message) => fail_at(lua, message),
                Fault::Lua(e) => e,
            })
        })?,
    )?;
    cjson.raw_set("null", null())?;
    globals.raw_set("cjson", cjson)
}

/// `cjson.null`: a light userdata holding no address.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Why decoding stopped: a fault in the text, or in Lua.
enum Fault {
    Text(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fault {
    fn from(e: mlua::Error) -> Self {
        Self::Lua(e)
    }
}

/// Encodes `value`; `Err` with why it cannot be, or a Lua fault's text.
fn encode(value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let lua_fault = |e: mlua::Error| e.to_string();
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(data) if data.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => encode_number(*n, out)?,
        Value::Integer(n) => encode_number(*n as f64, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(table) => {
            if depth + 1 > DEPTH_MAX {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 2
                ));
            }
            match array_length(table)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item = table.raw_get::<Value>(i).map_err(lua_fault)?;
                        encode(&item, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in table.clone().pairs::<Value, Value>() {
                        let (key, item) = pair.map_err(lua_fault)?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &key {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Number(_) | Value::Integer(_) => {
                                out.push(b'"');
                                encode(&key, depth + 1, out)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    other.type_name()
                                ));
                            }
                        }
                        out.push(b':');
                        encode(&item, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ));
        }
    }
    Ok(())
}

/// The length of `table` as an array, if every key is a whole number from 1; refused
/// if it is excessively sparse.
fn array_length(table: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0f64, 0usize);
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|e| e.to_string())?;
        let k = match key {
            Value::Number(k) => k,
            Value::Integer(k) => k as f64,
            _ => return Ok(None),
        };
        if k.floor() != k || k < 1.0 {
            return Ok(None);
        }
        max = max.max(k);
        items += 1;
    }
    if max > items as f64 * 2.0 && max > 10.0 {
        return Err("Cannot serialise table: excessively sparse array".to_owned());
    }
    Ok(Some(max as usize))
}

fn encode_number(n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".to_owned());
    }
    out.extend_from_slice(format_g14(n).as_bytes());
    Ok(())
}

/// `n` as C's `%.14g` writes it.
pub(super) fn format_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{n:.13e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("an exponent");
    let exponent: i32 = exponent.parse().expect("a whole exponent");
    let trim = |text: &str| -> String {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text.to_owned()
        }
    };
    if !(-4..14).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    let decimals = usize::try_from(13 - exponent).unwrap_or(0);
    trim(&format!("{n:.decimals$}"))
}

fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Reads JSON text.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    /// Why the text does not go on as `what`: lua-cjson's message, naming the token
    /// found.
    fn expected(&self, what: &str) -> String {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let found = match rest.first() {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b'"') => "T_STRING",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            _ if rest.starts_with(b"true") || rest.starts_with(b"false") => "T_BOOLEAN",
            _ if rest.starts_with(b"null") => "T_NULL",
            _ => "invalid token",
        };
        format!(
            "Expected {what} but found {found} at character {}",
            self.at + 1
        )
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, Fault> {
        self.skip_space();
        let Some(&first) = self.bytes.get(self.at) else {
            return Err(Fault::Text(self.expected("value")));
        };
        match first {
            b'{' | b'[' => {
                if depth + 1 > DEPTH_MAX {
                    return Err(Fault::Text(format!(
                        "Found too many nested data structures ({}) at character {}",
                        depth + 1,
                        self.at + 1
                    )));
                }
                self.at += 1;
                let table = lua.create_table()?;
                let (close, object) = if first == b'{' {
                    (b'}', true)
                } else {
                    (b']', false)
                };
                self.skip_space();
                if self.bytes.get(self.at) == Some(&close) {
                    self.at += 1;
                    return Ok(Value::Table(table));
                }
                let mut index = 1i64;
                loop {
                    if object {
                        self.skip_space();
                        if self.bytes.get(self.at) != Some(&b'"') {
                            return Err(Fault::Text(self.expected("object key string")));
                        }
                        let key = self.string(lua)?;
                        self.skip_space();
                        if self.bytes.get(self.at) != Some(&b':') {
                            return Err(Fault::Text(self.expected("colon")));
                        }
                        self.at += 1;
                        let item = self.value(lua, depth + 1)?;
                        table.raw_set(key, item)?;
                    } else {
                        let item = self.value(lua, depth + 1)?;
                        table.raw_set(index, item)?;
                        index += 1;
                    }
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(&b) if b == close => {
                            self.at += 1;
                            return Ok(Value::Table(table));
                        }
                        _ if object => {
                            return Err(Fault::Text(self.expected("comma or object end")));
                        }
                        _ => return Err(Fault::Text(self.expected("comma or array end"))),
                    }
                }
            }
            b'"' => self.string(lua),
            b't' if self.bytes[self.at..].starts_with(b"true") => {
                self.at += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.bytes[self.at..].starts_with(b"false") => {
                self.at += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.bytes[self.at..].starts_with(b"null") => {
                self.at += 4;
                Ok(null())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.at = start;
                        Err(Fault::Text(self.expected("value")))
                    }
                }
            }
            _ => Err(Fault::Text(self.expected("value"))),
        }
    }

    /// A string, at its opening quote.
    fn string(&mut self, lua: &Lua) -> Result<Value, Fault> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                self.at = start;
                return Err(Fault::Text(self.expected("value")));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.bytes.get(self.at) else {
                        self.at = start;
                        return Err(Fault::Text(self.expected("value")));
                    };
                    self.at += 1;
                    match escape {
                        b'"' | b'\\' | b'/' => out.push(escape),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let code = self.unicode_escape().ok_or_else(|| {
                                Fault::Text(format!(
                                    "Expected value but found invalid unicode escape code at character {}",
                                    start + 1
                                ))
                            })?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            self.at = start;
                            return Err(Fault::Text(self.expected("value")));
                        }
                    }
                }
                _ => out.push(b),
            }
        }
        Ok(Value::String(lua.create_string(out)?))
    }

    /// The character of a `\u` escape (the four hex digits at `at`), with a second
    /// escape for a surrogate pair.
    fn unicode_escape(&mut self) -> Option<char> {
        let hex = |reader: &mut Self| -> Option<u32> {
            let digits = reader.bytes.get(reader.at..reader.at + 4)?;
            let value = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
            reader.at += 4;
            Some(value)
        };
        let high = hex(self)?;
        if (0xD800..0xDC00).contains(&high) {
            if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                return None;
            }
            self.at += 2;
            let low = hex(self)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        char::from_u32(high)
    }
}

#[cfg(test)]
mod tests {
    use super::format_g14;

    #[test]
    fn numbers_are_written_as_percent_14g() {
        for (n, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1e15, "1e+15"),
            (1e14, "1e+14"),
            (12_345_678_901_234.0, "12345678901234"),
            (123_456_789_012_345.0, "1.2345678901234e+14"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0 / 3.0, "0.33333333333333"),
            (100.0, "100"),
        ] {
            assert_eq!(format_g14(n), text, "{n}");
        }
    }
}
