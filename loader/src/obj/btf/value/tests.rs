//! The BTF value codec, on BTF built here.

use super::*;
use crate::obj::btf::tests::Builder;

const INT: u32 = 1;
const UCHAR: u32 = 2;
const BOOL: u32 = 4;
const MODE: u32 = 5;
const NAME8: u32 = 6;
const U16: u32 = 8;
const CFG: u32 = 10;
const CV_INT: u32 = 12;
const BITS: u32 = 14;
const FLOAT: u32 = 15;
const MODE64: u32 = 16;
const WRAP: u32 = 18;

/// int, unsigned char, char, _Bool, enum mode, char[8], unsigned short,
/// __u16, __u16[3], struct cfg, volatile int, const volatile int,
/// unsigned int, struct bits (bitfields), float, enum64, an anonymous
/// union and a struct holding it.
fn btf() -> Btf {
    let mut b = Builder::new();
    let s = |b: &mut Builder, n: &str| b.s(n);
    let n = s(&mut b, "int");
    b.t(n, BtfKind::Int, 0, 4, &[(1 << 24) | 32]); // 1
    let n = s(&mut b, "unsigned char");
    b.t(n, BtfKind::Int, 0, 1, &[8]); // 2
    let n = s(&mut b, "char");
    b.t(n, BtfKind::Int, 0, 1, &[(1 << 24) | 8]); // 3
    let n = s(&mut b, "_Bool");
    b.t(n, BtfKind::Int, 0, 1, &[(4 << 24) | 8]); // 4
    let (n, slow, fast) = (
        s(&mut b, "mode"),
        s(&mut b, "MODE_SLOW"),
        s(&mut b, "MODE_FAST"),
    );
    b.t(n, BtfKind::Enum, 2, 4, &[slow, 0, fast, 2]); // 5
    b.t(0, BtfKind::Array, 0, 0, &[3, INT, 8]); // 6 char[8]
    let n = s(&mut b, "unsigned short");
    b.t(n, BtfKind::Int, 0, 2, &[16]); // 7
    let n = s(&mut b, "__u16");
    b.t(n, BtfKind::Typedef, 0, 7, &[]); // 8
    b.t(0, BtfKind::Array, 0, 0, &[U16, INT, 3]); // 9 __u16[3]
    let (n, a, ports, name) = (
        s(&mut b, "cfg"),
        s(&mut b, "a"),
        s(&mut b, "ports"),
        s(&mut b, "name"),
    );
    b.t(
        n,
        BtfKind::Struct,
        3,
        20,
        &[a, INT, 0, ports, 9, 32, name, NAME8, 80],
    ); // 10
    b.t(0, BtfKind::Volatile, 0, INT, &[]); // 11
    b.t(0, BtfKind::Const, 0, 11, &[]); // 12
    let n = s(&mut b, "unsigned int");
    b.t(n, BtfKind::Int, 0, 4, &[32]); // 13
    let (n, lo, hi) = (s(&mut b, "bits"), s(&mut b, "lo"), s(&mut b, "hi"));
    // struct bits { unsigned int lo:4; int hi:4; } (kind_flag: size << 24 | offset)
    b.t(
        n,
        BtfKind::Struct,
        2 | (1 << 31),
        4,
        &[lo, 13, 4 << 24, hi, INT, (4 << 24) | 4],
    ); // 14
    let n = s(&mut b, "float");
    b.t(n, BtfKind::Float, 0, 4, &[]); // 15
    let (n, big) = (s(&mut b, "wide"), s(&mut b, "WIDE_BIG"));
    b.t(n, BtfKind::Enum64, 1, 8, &[big, 0, 1]); // 16: WIDE_BIG = 1 << 32
    let (x, y) = (s(&mut b, "x"), s(&mut b, "y"));
    b.t(0, BtfKind::Union, 2, 4, &[x, INT, 0, y, 13, 0]); // 17
    let (n, tag) = (s(&mut b, "wrap"), s(&mut b, "tag"));
    b.t(n, BtfKind::Struct, 2, 8, &[tag, BOOL, 0, 0, 17, 32]); // 18
    Btf::parse(&b.build()).expect("test BTF parses")
}

fn enc(id: u32, text: &str) -> Result<Vec<u8>, ValueError> {
    encode(&btf(), id, text, "v")
}

fn json(id: u32, bytes: &[u8]) -> String {
    decode(&btf(), id, bytes, "v").unwrap().to_json()
}

#[test]
fn integers_in_every_notation_and_their_ranges() {
    assert_eq!(enc(INT, "42").unwrap(), 42i32.to_le_bytes());
    assert_eq!(enc(INT, "-1").unwrap(), [0xff; 4]);
    assert_eq!(enc(INT, "0x10").unwrap(), 16i32.to_le_bytes());
    assert_eq!(enc(INT, "0b101").unwrap(), 5i32.to_le_bytes());
    assert_eq!(enc(INT, "1_000").unwrap(), 1000i32.to_le_bytes());
    assert_eq!(enc(INT, "-2147483648").unwrap(), i32::MIN.to_le_bytes());
    assert_eq!(
        enc(INT, "2147483648").unwrap_err().to_string(),
        "v (int): 2147483648 is out of range (-2147483648 to 2147483647)"
    );
    assert_eq!(enc(UCHAR, "255").unwrap(), [255]);
    assert_eq!(
        enc(UCHAR, "-1").unwrap_err().to_string(),
        "v (unsigned char): -1 is out of range (0 to 255)"
    );
    assert_eq!(
        enc(U16, "65536").unwrap_err().to_string(),
        "v (__u16): 65536 is out of range (0 to 65535)"
    );
    assert!(matches!(
        enc(INT, "99999999999999999999999999999999999999999999"),
        Err(ValueError::OutOfRange { .. })
    ));
    assert_eq!(
        enc(INT, "forty").unwrap_err().to_string(),
        "v (int): 'forty' is not a number"
    );
    assert_eq!(json(INT, &(-7i32).to_le_bytes()), "-7");
    assert_eq!(json(U16, &[0xff, 0xff]), "65535");
}

#[test]
fn const_volatile_and_typedefs_are_seen_through() {
    assert_eq!(type_name(&btf(), CV_INT), "int");
    assert_eq!(enc(CV_INT, "3").unwrap(), 3i32.to_le_bytes());
    assert_eq!(json(CV_INT, &3i32.to_le_bytes()), "3");
}

#[test]
fn bools_and_floats() {
    assert_eq!(enc(BOOL, "true").unwrap(), [1]);
    assert_eq!(enc(BOOL, "0").unwrap(), [0]);
    assert_eq!(
        enc(BOOL, "yes").unwrap_err().to_string(),
        "v (_Bool): 'yes' is not true or false"
    );
    assert_eq!(json(BOOL, &[1]), "true");
    assert_eq!(enc(FLOAT, "1.5").unwrap(), 1.5f32.to_le_bytes());
    assert_eq!(json(FLOAT, &1.5f32.to_le_bytes()), "1.5");
}

#[test]
fn enums_by_name_or_number() {
    assert_eq!(enc(MODE, "MODE_FAST").unwrap(), 2u32.to_le_bytes());
    assert_eq!(enc(MODE, "\"MODE_FAST\"").unwrap(), 2u32.to_le_bytes());
    assert_eq!(enc(MODE, "7").unwrap(), 7u32.to_le_bytes());
    assert_eq!(
        enc(MODE, "MODE_TURBO").unwrap_err().to_string(),
        "v (enum mode): 'MODE_TURBO' is not one of its enumerators (MODE_SLOW, MODE_FAST)"
    );
    assert_eq!(json(MODE, &2u32.to_le_bytes()), "\"MODE_FAST\"");
    assert_eq!(json(MODE, &7u32.to_le_bytes()), "7");
    assert_eq!(enc(MODE64, "WIDE_BIG").unwrap(), (1u64 << 32).to_le_bytes());
    assert_eq!(json(MODE64, &(1u64 << 32).to_le_bytes()), "\"WIDE_BIG\"");
}

#[test]
fn char_arrays_are_strings() {
    assert_eq!(enc(NAME8, "hello").unwrap(), *b"hello\0\0\0");
    assert_eq!(enc(NAME8, "a, b").unwrap(), *b"a, b\0\0\0\0");
    assert_eq!(enc(NAME8, "\"q\\\"t\"").unwrap(), *b"q\"t\0\0\0\0\0");
    assert_eq!(enc(NAME8, "1234567").unwrap(), *b"1234567\0");
    assert_eq!(
        enc(NAME8, "12345678").unwrap_err().to_string(),
        "v (char[8]): the string is 8 bytes; it holds at most 7 and the terminating NUL"
    );
    assert_eq!(json(NAME8, b"eth0\0xyz"), "\"eth0\"");
}

#[test]
fn structs_in_either_syntax_round_trip() {
    let text = enc(CFG, "{a=-5, ports=[80, 443], name=eth0}").unwrap();
    let json_form = enc(CFG, r#"{"a": -5, "ports": [80, 443], "name": "eth0"}"#).unwrap();
    assert_eq!(text, json_form);
    assert_eq!(text.len(), 20);
    assert_eq!(
        json(CFG, &text),
        r#"{"a":-5,"ports":[80,443,0],"name":"eth0"}"#
    );
    // Fields not named are zero.
    assert_eq!(
        json(CFG, &enc(CFG, "{ports=[1]}").unwrap()),
        r#"{"a":0,"ports":[1,0,0],"name":""}"#
    );
    assert_eq!(
        enc(CFG, "{b=1}").unwrap_err().to_string(),
        "v (struct cfg): no field 'b' (its fields: a, ports, name)"
    );
    assert_eq!(
        enc(CFG, "{ports=[1,2,3,4]}").unwrap_err().to_string(),
        "v.ports (__u16[3]): 4 elements given; it has 3"
    );
    assert_eq!(
        enc(CFG, "{ports=[1,70000]}").unwrap_err().to_string(),
        "v.ports[1] (__u16): 70000 is out of range (0 to 65535)"
    );
    assert_eq!(
        enc(CFG, "5").unwrap_err().to_string(),
        "v (struct cfg): '5' is not a struct {field=value, ...}"
    );
}

#[test]
fn bitfields_and_anonymous_unions() {
    let b = enc(BITS, "{lo=15, hi=-2}").unwrap();
    assert_eq!(b, [0xef, 0, 0, 0]);
    assert_eq!(json(BITS, &b), r#"{"lo":15,"hi":-2}"#);
    assert_eq!(
        enc(BITS, "{lo=16}").unwrap_err().to_string(),
        "v.lo (unsigned int): 16 is out of range (0 to 15)"
    );
    let w = enc(WRAP, "{tag=true, y=7}").unwrap();
    assert_eq!(w, [1, 0, 0, 0, 7, 0, 0, 0]);
    assert_eq!(json(WRAP, &w), r#"{"tag":true,"x":7,"y":7}"#);
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        enc(CFG, "{a=1").unwrap_err().to_string(),
        "v: cannot read '{a=1' at byte 4: expected ',' or '}'"
    );
    assert!(matches!(
        enc(INT, "[1] x"),
        Err(ValueError::Syntax { at: 4, .. })
    ));
}

#[test]
fn short_bytes_and_untyped_bytes() {
    assert_eq!(
        decode(&btf(), INT, &[1, 2], "k").unwrap_err().to_string(),
        "k (int): 2 bytes given; the type is 4 bytes"
    );
    assert_eq!(Value::Bytes(vec![1, 0xab]).to_json(), r#"["0x01","0xab"]"#);
    assert_eq!(Value::Str("a\"\n".into()).to_json(), r#""a\"\n""#);
}
