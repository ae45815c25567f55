//! BTF types in C-like words (`struct rq`, `const int *`, `char[16]`), for
//! messages and `inspect`.

use crate::obj::btf::{Btf, BtfKind, BtfType, BtfTypeData};
use crate::obj::core::TargetTypes;
use std::borrow::Cow;
use std::cell::Cell;

/// A type of the object's BTF in C-like words (`struct rq`, `const int *`,
/// `char[16]`, `int (__s32)`), for messages and `inspect`.
pub fn describe_type(btf: &Btf, id: u32) -> String {
    describe_in(
        &|id| btf.type_by_id(id).ok().map(Cow::Borrowed),
        &|off| btf.string(off).ok().map(Cow::Borrowed),
        id,
        &Cell::new(DESCRIBE_BUDGET),
    )
}

/// [`describe_type`] for a type of the kernel's.
pub fn describe_target_type(types: &dyn TargetTypes, id: u32) -> String {
    describe_in(
        &|id| types.type_by_id(id).ok(),
        &|off| types.string(off).ok(),
        id,
        &Cell::new(DESCRIBE_BUDGET),
    )
}

type TypeOf<'a> = dyn Fn(u32) -> Option<Cow<'a, BtfType>> + 'a;
type StrOf<'a> = dyn Fn(u32) -> Option<Cow<'a, str>> + 'a;

/// How many types one description may visit: a prototype whose parameters
/// point back to it would otherwise take exponential time.
const DESCRIBE_BUDGET: u32 = 64;

fn describe_in<'a>(ty: &TypeOf<'a>, string: &StrOf<'a>, id: u32, budget: &Cell<u32>) -> String {
    if budget.get() == 0 {
        return "...".into();
    }
    budget.set(budget.get() - 1);
    let Some(t) = ty(id) else {
        return format!("[{id}]?");
    };
    let name = string(t.name_off).unwrap_or_default();
    let inner = |id| describe_in(ty, string, id, budget);
    match (&t.kind, &t.data) {
        (BtfKind::Void, _) => "void".into(),
        (BtfKind::Struct, _) => format!("struct {name}"),
        (BtfKind::Union, _) => format!("union {name}"),
        (BtfKind::Enum | BtfKind::Enum64, _) => format!("enum {name}"),
        (BtfKind::Fwd, _) => format!("{} {name}", if t.kind_flag { "union" } else { "struct" }),
        (BtfKind::Ptr, _) => format!("{} *", inner(t.size_or_type)),
        (BtfKind::Const, _) => format!("const {}", inner(t.size_or_type)),
        (BtfKind::Volatile, _) => format!("volatile {}", inner(t.size_or_type)),
        (BtfKind::Restrict, _) => format!("restrict {}", inner(t.size_or_type)),
        (
            BtfKind::Array,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => {
            format!("{}[{nelems}]", inner(*elem_type))
        }
        (BtfKind::FuncProto, BtfTypeData::Params(params)) => {
            let args: Vec<String> = params
                .iter()
                .map(|p| {
                    if p.type_id == 0 {
                        "...".into()
                    } else {
                        inner(p.type_id)
                    }
                })
                .collect();
            let args = if args.is_empty() {
                "void".to_owned()
            } else {
                args.join(", ")
            };
            format!("{} ({args})", inner(t.size_or_type))
        }
        (BtfKind::Func | BtfKind::Var, _) => inner(t.size_or_type),
        _ if !name.is_empty() => name.into_owned(),
        _ => t.kind.name().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::externs::tests::{int, with};
    use crate::obj::externs::INT_SIGNED;

    #[test]
    fn types_in_words() {
        use BtfKind as K;
        let b = with(&[
            ("int", K::Int, 4, int(INT_SIGNED, 32)),       // 1
            ("", K::Const, 1, BtfTypeData::None),          // 2
            ("", K::Ptr, 2, BtfTypeData::None),            // 3
            ("task_struct", K::Fwd, 0, BtfTypeData::None), // 4
            ("", K::Ptr, 4, BtfTypeData::None),            // 5
            (
                "",
                K::FuncProto,
                5,
                BtfTypeData::Params(vec![
                    crate::obj::btf::BtfParam {
                        name_off: 0,
                        type_id: 3,
                    },
                    crate::obj::btf::BtfParam {
                        name_off: 0,
                        type_id: 0,
                    },
                ]),
            ), // 6
            ("", K::Ptr, 3, BtfTypeData::None),            // 7
        ]);
        assert_eq!(describe_type(&b, 3), "const int *");
        assert_eq!(
            describe_type(&b, 6),
            "struct task_struct * (const int *, ...)"
        );
        assert_eq!(describe_type(&b, 7), "const int * *");
        assert_eq!(describe_type(&b, 0), "void");
        // A prototype whose parameters point back to it: cut short.
        let params = (0..8)
            .map(|_| crate::obj::btf::BtfParam {
                name_off: 0,
                type_id: 2,
            })
            .collect();
        let b = with(&[
            ("", K::FuncProto, 2, BtfTypeData::Params(params)), // 1
            ("", K::Ptr, 1, BtfTypeData::None),                 // 2
        ]);
        let text = describe_type(&b, 1);
        assert!(text.contains("...") && text.len() < 4096, "{text}");
        assert_eq!(describe_type(&b, 99), "[99]?");
    }
}
