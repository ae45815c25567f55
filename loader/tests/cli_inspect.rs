//! `rawbpf inspect` as a user runs it: exit codes, what the table shows, and
//! the `--json` document, parsed.

use std::path::PathBuf;
use std::process::{Command, Output};

const OBJ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj");

fn rawbpf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rawbpf"))
        .args(args)
        .output()
        .expect("run rawbpf")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn obj(name: &str) -> String {
    format!("{OBJ_DIR}/{name}")
}

/// A file removed when the test ends, pass or fail.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("rawbpf-test-{}-{tag}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn table_shows_the_pipeline() {
    let o = rawbpf(&["inspect", &obj("pipeline.bpf.o")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("mark_packet "),
        ["mark_packet", "tc", "sched_cls", "-", "48", "-"]
    );
    assert_eq!(
        line("inspect_and_drop "),
        ["inspect_and_drop", "tc", "sched_cls", "-", "18", "-"]
    );
    assert_eq!(
        line("prog_array "),
        ["prog_array", "prog_array", "4", "4", "2", "0x0", "btf"]
    );
    assert!(
        out.contains("values: [0] = mark_packet, [1] = inspect_and_drop"),
        "{out}"
    );
    assert_eq!(
        line("mark_packet+"),
        ["mark_packet+40", "ld_imm64", "map", "prog_array"]
    );
    assert!(out.lines().all(|l| l == l.trim_end()), "trailing spaces");
}

#[test]
fn json_has_the_same_facts() {
    let o = rawbpf(&["inspect", &obj("pipeline.bpf.o"), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json::parse(&stdout(&o)).expect("valid JSON");
    let programs = doc.get("programs").array();
    assert_eq!(programs.len(), 2);
    for (p, name) in programs.iter().zip(["mark_packet", "inspect_and_drop"]) {
        assert_eq!(p.get("name").str(), name);
        assert_eq!(p.get("type").str(), "sched_cls");
        assert_eq!(p.get("section").str(), "tc");
    }
    let relocs = programs[0].get("relocations").array();
    assert_eq!(relocs.len(), 1);
    assert_eq!(relocs[0].get("kind").str(), "map");
    assert_eq!(relocs[0].get("map").str(), "prog_array");
    assert_eq!(relocs[0].get("insn").num(), 40);

    let maps = doc.get("maps").array();
    assert_eq!(maps.len(), 1);
    let m = &maps[0];
    assert_eq!(m.get("name").str(), "prog_array");
    assert_eq!(m.get("type").str(), "prog_array");
    assert_eq!(
        (
            m.get("key_size").num(),
            m.get("value_size").num(),
            m.get("max_entries").num()
        ),
        (4, 4, 2)
    );
    let values = m.get("values").array();
    assert_eq!(values[0].get("index").num(), 0);
    assert_eq!(values[0].get("program").str(), "mark_packet");
    assert_eq!(values[1].get("index").num(), 1);
    assert_eq!(values[1].get("program").str(), "inspect_and_drop");
    assert_eq!(doc.get("license").str(), "GPL");
}

#[test]
fn every_committed_object_inspects() {
    for entry in std::fs::read_dir(OBJ_DIR).unwrap() {
        let path = entry.unwrap().path();
        let path = path.to_str().unwrap();
        for json in [false, true] {
            let args: &[&str] = if json {
                &["inspect", path, "--json"]
            } else {
                &["inspect", path]
            };
            let o = rawbpf(args);
            assert_eq!(o.status.code(), Some(0), "{path}: {}", stderr(&o));
            if json {
                json::parse(&stdout(&o)).unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
    }
}

#[test]
fn errors_name_the_file_and_exit_1() {
    let o = rawbpf(&["inspect", "/nonexistent/x.bpf.o"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("rawbpf: /nonexistent/x.bpf.o: "),
        "{}",
        stderr(&o)
    );

    let f = TempFile::new("notelf", b"#!/bin/sh\n");
    let o = rawbpf(&["inspect", f.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "rawbpf: {}: not an ELF file (no \\x7fELF magic at offset 0)",
            f.0.display()
        )
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["inspect"],
        &["inspect", "a", "b"],
        &["inspect", "x.o", "--jsn"],
        &["frob"],
    ] {
        let o = rawbpf(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("Try 'rawbpf --help'"), "{args:?}");
    }
    assert!(stderr(&rawbpf(&["inspect", "x.o", "--jsn"])).contains("unknown option '--jsn'"));
}

#[test]
fn help_and_unimplemented_commands() {
    let o = rawbpf(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for c in [
        "inspect", "load", "run", "attach", "detach", "list", "swap", "probe", "check", "demo",
    ] {
        assert!(
            stdout(&o).contains(&format!("rawbpf {c}")),
            "{c} missing from --help"
        );
    }
    let o = rawbpf(&["probe"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim_end(),
        "rawbpf: probe: not implemented in this version"
    );
}

/// A small JSON parser: enough to check the documents structurally.
mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> &Value {
            match self {
                Value::Obj(fields) => fields
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| panic!("no key {key}")),
                _ => panic!("not an object: {self:?}"),
            }
        }
        pub fn array(&self) -> &[Value] {
            match self {
                Value::Arr(a) => a,
                _ => panic!("not an array: {self:?}"),
            }
        }
        pub fn str(&self) -> &str {
            match self {
                Value::Str(s) => s,
                _ => panic!("not a string: {self:?}"),
            }
        }
        pub fn num(&self) -> u64 {
            match self {
                Value::Num(n) => *n as u64,
                _ => panic!("not a number: {self:?}"),
            }
        }
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected '{}' at {}", c as char, self.i))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Obj(fields));
                    }
                    loop {
                        self.ws();
                        let Value::Str(k) = self.string()? else {
                            unreachable!()
                        };
                        self.eat(b':')?;
                        fields.push((k, self.value()?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Obj(fields));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Arr(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Arr(items));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => self.string(),
                Some(b't') if self.s[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Value::Null)
                }
                _ => {
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                    {
                        self.i += 1;
                    }
                    std::str::from_utf8(&self.s[start..self.i])
                        .unwrap()
                        .parse()
                        .map(Value::Num)
                        .map_err(|_| format!("bad value at {start}"))
                }
            }
        }
        fn string(&mut self) -> Result<Value, String> {
            self.eat(b'"')?;
            let mut out = String::new();
            loop {
                let c = *self.s.get(self.i).ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => return Ok(Value::Str(out)),
                    b'\\' => {
                        let e = *self.s.get(self.i).ok_or("bad escape")?;
                        self.i += 1;
                        match e {
                            b'n' => out.push('\n'),
                            b't' => out.push('\t'),
                            b'r' => out.push('\r'),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                                out.push(
                                    char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap(),
                                );
                                self.i += 4;
                            }
                            other => out.push(other as char),
                        }
                    }
                    c if c < 0x20 => return Err("raw control character in string".into()),
                    _ => {
                        // Copy the whole UTF-8 sequence.
                        let start = self.i - 1;
                        let len = match c {
                            0xf0.. => 4,
                            0xe0.. => 3,
                            0xc0.. => 2,
                            _ => 1,
                        };
                        out.push_str(std::str::from_utf8(&self.s[start..start + len]).unwrap());
                        self.i = start + len;
                    }
                }
            }
        }
    }
}
