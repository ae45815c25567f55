//! Command-line parsing for the whole contract in `../shared/README.md` §1:
//! every command and flag is known here, so a typo is a usage error (exit 2)
//! even for commands this version does not implement yet.

/// How a flag is used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `--flag`
    Switch,
    /// `--flag VALUE` or `--flag=VALUE`, at most once.
    Value,
    /// `--flag VALUE`, any number of times.
    Repeated,
}

/// One command of the CLI.
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    /// Its flags, in groups (several commands share the TC target flags).
    pub flags: &'static [&'static [(&'static str, Arg)]],
    /// Positional arguments: how many at least and at most.
    pub positional: (usize, usize),
}

use Arg::*;

/// Which interface and direction: attach, detach and swap share these.
const TC_TARGET: &[(&str, Arg)] = &[
    ("--dev", Value),
    ("--netns", Value),
    ("--ingress", Switch),
    ("--egress", Switch),
];
/// The XDP hook instead of a TC direction: attach and detach.
const XDP: &[(&str, Arg)] = &[("--xdp", Switch)];
const JSON: &[(&str, Arg)] = &[("--json", Switch)];
/// The kernel BTF to relocate against instead of /sys/kernel/btf/vmlinux.
const BTF: &[(&str, Arg)] = &[("--btf", Value)];
/// Global variables set before load: load, run and attach.
const SET: &[(&str, Arg)] = &[("--set", Repeated)];
/// Where maps the object pins by name (`LIBBPF_PIN_BY_NAME`) are pinned.
const PIN_MAPS: &[(&str, Arg)] = &[("--pin-maps", Value)];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "inspect",
        usage: "rawbpf inspect OBJ [--json]",
        summary: "what an object holds: programs, maps, relocations, BTF, license",
        flags: &[JSON],
        positional: (1, 1),
    },
    CommandSpec {
        name: "load",
        usage: "rawbpf load OBJ [--tail MAP:KEY=PROG]... [--set NAME=VALUE]... [--pin DIR] [--pin-maps DIR] [--btf FILE] [--json]",
        summary: "create maps, relocate, load every program, fill prog arrays",
        flags: &[&[("--tail", Repeated), ("--pin", Value)], SET, PIN_MAPS, BTF, JSON],
        positional: (1, 1),
    },
    CommandSpec {
        name: "run",
        usage: "rawbpf run OBJ --prog NAME [--tail MAP:KEY=PROG]... [--set NAME=VALUE]... [--data-in FILE] [--ctx-in FILE] [--repeat N] [--dump MAP]... [--btf FILE] [--json]",
        summary: "BPF_PROG_TEST_RUN a program: retval, ns per run, data out, maps (raw_tp/tracing: --ctx-in only)",
        flags: &[
            &[
                ("--prog", Value),
                ("--tail", Repeated),
                ("--data-in", Value),
                ("--ctx-in", Value),
                ("--repeat", Value),
                ("--dump", Repeated),
            ],
            SET,
            BTF,
            JSON,
        ],
        positional: (1, 1),
    },
    CommandSpec {
        name: "attach",
        usage: "rawbpf attach OBJ --dev IFACE [--netns NAME] [--ingress|--egress|--xdp] [--prog NAME] [--tail MAP:KEY=PROG]... [--priority N] [--replace] [--mode auto|tc|tcx] [--xdp-mode auto|native|generic|offload] [--set NAME=VALUE]... [--pin-maps DIR] [--btf FILE] [--json]\n       rawbpf attach OBJ [--name GROUP] [--prog NAME]... [--cgroup PATH] [--netns NAME] [--pid PID] [--uprobe-binary PATH] [--uprobe-symbol SYMBOL] [--netfilter FAMILY:HOOK:PRIORITY] [--foreground] [--set NAME=VALUE]... [--pin-maps DIR] [--btf FILE] [--json]",
        summary: "attach the entry program as a direct-action TC filter, a TCX link, or the device's XDP program; without --dev, attach every program whose section names its hook, from one load, as a pinned group (--foreground: pin nothing, detach at Ctrl-C)",
        flags: &[
            TC_TARGET,
            XDP,
            &[
                ("--name", Value),
                ("--cgroup", Value),
                ("--pid", Value),
                ("--uprobe-binary", Value),
                ("--uprobe-symbol", Value),
                ("--netfilter", Value),
                ("--foreground", Switch),
            ],
            &[
                ("--xdp-mode", Value),
                ("--prog", Repeated),
                ("--tail", Repeated),
                ("--priority", Value),
                ("--replace", Switch),
                ("--mode", Value),
            ],
            SET,
            PIN_MAPS,
            BTF,
            JSON,
        ],
        positional: (1, 1),
    },
    CommandSpec {
        name: "detach",
        usage: "rawbpf detach --dev IFACE [--netns NAME] [--ingress|--egress|--xdp] [--priority N|--all]\n       rawbpf detach --name GROUP | --all [--json]",
        summary: "remove a filter, link or XDP program (or all of ours on a hook) and its pins; --name: a group's links and pins (--all without --dev: every group)",
        flags: &[
            TC_TARGET,
            XDP,
            &[("--priority", Value), ("--all", Switch), ("--name", Value)],
            JSON,
        ],
        positional: (0, 0),
    },
    CommandSpec {
        name: "list",
        usage: "rawbpf list [--dev IFACE] [--netns NAME] [--json]",
        summary: "attached BPF filters, links and XDP programs with program name, id and tag; without --dev also every BPF link the kernel has and rawbpf's groups",
        flags: &[&[("--dev", Value), ("--netns", Value)], JSON],
        positional: (0, 0),
    },
    CommandSpec {
        name: "swap",
        usage: "rawbpf swap --dev IFACE [--netns NAME] [--ingress|--egress|--xdp] [--priority N] [--set NAME=VALUE]... [--pin-maps DIR] [--json] MAP:KEY=OBJ:PROG",
        summary: "replace one tail-call stage of an attached chain, atomically, sharing the chain's maps",
        flags: &[TC_TARGET, XDP, &[("--priority", Value)], SET, PIN_MAPS, JSON],
        positional: (1, 1),
    },
    CommandSpec {
        name: "map",
        usage: "rawbpf map list [--json]\n       rawbpf map show|dump MAP [--json]\n       rawbpf map lookup|delete MAP KEY [--json]\n       rawbpf map update MAP KEY VALUE [--noexist|--exist] [--json]\n         MAP: id N | pinned PATH | NAME --name GROUP | NAME --dev IFACE [--netns NAME] [--ingress|--egress|--xdp] [--priority N]",
        summary: "any map of the system: list them, show one, dump, look up, update or delete elements; keys and values as JSON typed by the map's BTF (hex bytes without BTF)",
        flags: &[
            TC_TARGET,
            XDP,
            &[
                ("--name", Value),
                ("--priority", Value),
                ("--noexist", Switch),
                ("--exist", Switch),
            ],
            JSON,
        ],
        positional: (1, 5),
    },
    CommandSpec {
        name: "probe",
        usage: "rawbpf probe [--helpers PROG_TYPE]... [--full] [--json]",
        summary: "what this kernel supports (helpers for the program types named; --full: every helper of every type, kconfig and kallsyms names: a target file for check --target)",
        flags: &[&[("--helpers", Repeated), ("--full", Switch)], JSON],
        positional: (0, 0),
    },
    CommandSpec {
        name: "check",
        usage: "rawbpf check OBJ [--target FILE] [--btf FILE] [--json]",
        summary: "what the object needs vs. what this kernel (or the target FILE from `probe --json --full`) supports",
        flags: &[&[("--target", Value)], BTF, JSON],
        positional: (1, 1),
    },
    CommandSpec {
        name: "events",
        usage: "rawbpf events id N | pinned PATH | --name GROUP MAPNAME [--count N] [--type NAME] [--json]",
        summary: "print the records of a ring buffer or perf event array map as they come (hex, or decoded as BTF type NAME; --json: one object per line), until Ctrl-C or N records",
        flags: &[&[("--name", Value), ("--count", Value), ("--type", Value)], JSON],
        positional: (1, 2),
    },
    CommandSpec {
        name: "demo",
        usage: "rawbpf demo [--json]",
        summary: "the built-in pipeline in a throwaway netns, with counts",
        flags: &[JSON],
        positional: (0, 0),
    },
];

/// A parsed command line.
pub struct Parsed {
    pub command: &'static CommandSpec,
    pub positional: Vec<String>,
    flags: Vec<(&'static str, Option<String>)>,
}

impl Parsed {
    pub fn switch(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    #[allow(dead_code)] // used by the commands that take values, as they land
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(f, _)| *f == flag)
            .and_then(|(_, v)| v.as_deref())
    }

    #[allow(dead_code)]
    pub fn values<'a>(&'a self, flag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |(f, _)| *f == flag)
            .filter_map(|(_, v)| v.as_deref())
    }
}

/// What the user asked for.
pub enum Request {
    Help(Option<&'static CommandSpec>),
    Version,
    Run(Parsed),
}

/// Parses `args` (without the program name). Errors are usage messages.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    if let Some(request) = tool_request(first, rest) {
        return request;
    }
    let command = find(first).ok_or_else(|| format!("unknown command '{first}'"))?;
    let Some(Args { positional, flags }) = read_args(command, rest)? else {
        return Ok(Request::Help(Some(command)));
    };
    check_positional(command, &positional)?;
    if flags.iter().any(|(f, _)| *f == "--ingress") && flags.iter().any(|(f, _)| *f == "--egress") {
        return Err(format!(
            "{}: --ingress and --egress exclude each other",
            command.name
        ));
    }
    Ok(Request::Run(Parsed {
        command,
        positional,
        flags,
    }))
}

/// `help [COMMAND]`, `--help` and `--version` in the command's place: the
/// tool's own requests, `None` for a command.
fn tool_request(first: &str, rest: &[String]) -> Option<Result<Request, String>> {
    match first {
        "-h" | "--help" | "help" => Some(match rest.first() {
            None => Ok(Request::Help(None)),
            Some(c) => find(c)
                .map(|c| Request::Help(Some(c)))
                .ok_or_else(|| format!("unknown command '{c}'")),
        }),
        "-V" | "--version" => Some(Ok(Request::Version)),
        _ => None,
    }
}

/// A command's arguments, read.
struct Args {
    positional: Vec<String>,
    flags: Vec<(&'static str, Option<String>)>,
}

/// Reads the arguments after the command; `None` if they ask for its help.
fn read_args(command: &'static CommandSpec, rest: &[String]) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut flags: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut it = rest.iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        // "-" alone is an ordinary argument (by convention, stdin).
        if only_positional || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let (flag, kind, value) = read_flag(command, arg, &mut it)?;
        if kind != Repeated && flags.iter().any(|(f, _)| *f == flag) {
            return Err(format!("{}: option '{flag}' given twice", command.name));
        }
        flags.push((flag, value));
    }
    Ok(Some(Args { positional, flags }))
}

/// One option of `command`, `--flag`, `--flag=VALUE` or `--flag VALUE`
/// (the value then taken from `it`): the flag, its kind and its value.
fn read_flag(
    command: &CommandSpec,
    arg: &str,
    it: &mut std::slice::Iter<'_, String>,
) -> Result<(&'static str, Arg, Option<String>), String> {
    let (name, inline) = match arg.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (arg, None),
    };
    let known = command.flags.iter().flat_map(|group| group.iter());
    let Some(&(flag, kind)) = known.into_iter().find(|(f, _)| *f == name) else {
        return Err(format!("{}: unknown option '{name}'", command.name));
    };
    let value = match (kind, inline) {
        (Switch, Some(_)) => {
            return Err(format!("{}: option '{flag}' takes no value", command.name))
        }
        (Switch, None) => None,
        (_, Some(v)) => Some(v),
        (_, None) => Some(
            it.next()
                .ok_or_else(|| format!("{}: option '{flag}' needs a value", command.name))?
                .clone(),
        ),
    };
    Ok((flag, kind, value))
}

/// As many positional arguments as `command` takes.
fn check_positional(command: &CommandSpec, positional: &[String]) -> Result<(), String> {
    let (min, max) = command.positional;
    if positional.len() < min {
        return Err(format!(
            "{}: missing argument (usage: {})",
            command.name, command.usage
        ));
    }
    if positional.len() > max {
        return Err(format!(
            "{}: unexpected argument '{}'",
            command.name, positional[max]
        ));
    }
    Ok(())
}

fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The tool's help text.
pub fn help() -> String {
    let mut s = String::from(
        "rawbpf: load, wire and attach BPF objects on raw bpf(2) and rtnetlink\n\nUSAGE\n",
    );
    for c in COMMANDS {
        s.push_str(&format!("  {}\n      {}\n", c.usage, c.summary));
    }
    s.push_str("\nrawbpf COMMAND --help shows one command. Exit status: 0 success, 1 failure, 2 bad usage.\n");
    s
}

/// One command's help text.
pub fn command_help(c: &CommandSpec) -> String {
    format!("usage: {}\n\n{}\n", c.usage, c.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Parsed {
        match parse(&args(s)) {
            Ok(Request::Run(p)) => p,
            Ok(_) => panic!("{s}: not a command run"),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn flags_values_and_repeats() {
        let p =
            run("run x.o --prog mark_packet --tail prog_array:1= --tail=m:0=p --repeat 5 --json");
        assert_eq!(p.positional, ["x.o"]);
        assert_eq!(p.value("--prog"), Some("mark_packet"));
        assert_eq!(
            p.values("--tail").collect::<Vec<_>>(),
            ["prog_array:1=", "m:0=p"]
        );
        assert!(p.switch("--json"));
        assert!(!p.switch("--dump"));
        let p = run("run x.o --prog on_enter --ctx-in args.bin");
        assert_eq!(p.value("--ctx-in"), Some("args.bin"));
    }

    #[test]
    fn usage_errors() {
        let err = |s: &str| match parse(&args(s)) {
            Err(e) => e,
            Ok(_) => panic!("{s} parsed"),
        };
        assert_eq!(err(""), "no command given");
        assert_eq!(err("frobnicate"), "unknown command 'frobnicate'");
        assert_eq!(err("inspect x.o --jsn"), "inspect: unknown option '--jsn'");
        assert_eq!(err("inspect x.o -j"), "inspect: unknown option '-j'");
        assert_eq!(err("inspect -x"), "inspect: unknown option '-x'");
        assert_eq!(err("help frob"), "unknown command 'frob'");
        assert_eq!(err("--help frob"), "unknown command 'frob'");
        assert_eq!(
            err("inspect"),
            "inspect: missing argument (usage: rawbpf inspect OBJ [--json])"
        );
        assert_eq!(err("inspect a b"), "inspect: unexpected argument 'b'");
        assert_eq!(err("run x.o --prog"), "run: option '--prog' needs a value");
        assert_eq!(
            err("run x.o --prog a --prog b"),
            "run: option '--prog' given twice"
        );
        assert_eq!(
            err("inspect x.o --json=1"),
            "inspect: option '--json' takes no value"
        );
        assert_eq!(
            err("detach --dev eth0 --ingress --egress"),
            "detach: --ingress and --egress exclude each other"
        );
    }

    #[test]
    fn help_for_the_tool_and_each_command() {
        let help = |s: &str| match parse(&args(s)) {
            Ok(Request::Help(c)) => c.map(|c| c.name),
            _ => panic!("{s}: not a help request"),
        };
        assert_eq!(help("--help"), None);
        assert_eq!(help("-h"), None);
        assert_eq!(help("help"), None);
        assert_eq!(help("help inspect"), Some("inspect"));
        assert_eq!(help("-h run"), Some("run"));
        assert_eq!(help("inspect -h"), Some("inspect"));
        assert_eq!(help("attach x.o --help"), Some("attach"));
        assert!(matches!(parse(&args("--version")), Ok(Request::Version)));
        assert!(matches!(parse(&args("-V")), Ok(Request::Version)));
    }

    #[test]
    fn lone_dash_is_positional() {
        assert_eq!(run("inspect -").positional, ["-"]);
    }

    #[test]
    fn double_dash_ends_options() {
        assert_eq!(run("inspect -- --odd-name.o").positional, ["--odd-name.o"]);
    }
}

/// `--tail MAP:KEY=PROG` (or `MAP:KEY=` to leave the slot empty).
pub fn tail_slot(s: &str) -> Result<rawbpf::TailSlot, String> {
    let usage = "expected MAP:KEY=PROG (or MAP:KEY= to leave the slot empty)";
    let (map, rest) = s.split_once(':').ok_or(usage)?;
    let (key, program) = rest.split_once('=').ok_or(usage)?;
    if map.is_empty() {
        return Err("the map name is empty".into());
    }
    Ok(rawbpf::TailSlot {
        map: map.to_owned(),
        key: key_number(key)?,
        program: (!program.is_empty()).then(|| program.to_owned()),
    })
}

/// `swap`'s `MAP:KEY=OBJ:PROG`.
pub fn swap_spec(s: &str) -> Result<rawbpf::attach::SwapSpec, String> {
    let usage = || "expected MAP:KEY=OBJ:PROG".to_owned();
    let (slot, stage) = s.split_once('=').ok_or_else(usage)?;
    let (map, key) = slot.split_once(':').ok_or_else(usage)?;
    let (object, program) = stage.rsplit_once(':').ok_or_else(usage)?;
    if map.is_empty() || object.is_empty() || program.is_empty() {
        return Err(usage());
    }
    Ok(rawbpf::attach::SwapSpec {
        map: map.to_owned(),
        key: key_number(key)?,
        object: std::path::PathBuf::from(object),
        program: program.to_owned(),
    })
}

fn key_number(key: &str) -> Result<u32, String> {
    key.parse()
        .map_err(|_| format!("key '{key}' is not a number from 0 to 4294967295"))
}

#[cfg(test)]
mod arg_tests {
    use super::*;

    #[test]
    fn tail_and_swap_arguments_parse() {
        let t = tail_slot("prog_array:1=inspect_and_drop").unwrap();
        assert_eq!(
            (t.map.as_str(), t.key, t.program.as_deref()),
            ("prog_array", 1, Some("inspect_and_drop"))
        );
        assert_eq!(tail_slot("prog_array:0=").unwrap().program, None);
        assert_eq!(
            tail_slot("prog_array=1").unwrap_err(),
            "expected MAP:KEY=PROG (or MAP:KEY= to leave the slot empty)"
        );
        assert_eq!(tail_slot(":1=p").unwrap_err(), "the map name is empty");
        let s = swap_spec("prog_array:1=objs/v2.bpf.o:inspect_and_drop").unwrap();
        assert_eq!(
            (
                s.map.as_str(),
                s.key,
                s.object.to_str().unwrap(),
                s.program.as_str()
            ),
            ("prog_array", 1, "objs/v2.bpf.o", "inspect_and_drop")
        );
        assert_eq!(
            swap_spec("prog_array:1=x.o").unwrap_err(),
            "expected MAP:KEY=OBJ:PROG"
        );
        assert_eq!(
            swap_spec("m:k=x.o:p").unwrap_err(),
            "key 'k' is not a number from 0 to 4294967295"
        );
    }
}
