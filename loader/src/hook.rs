//! The words every layer that touches a device's hooks shares: which hook
//! ([`Hook`]) and which way packets pass a clsact filter ([`Direction`]).
//! A leaf: it imports nothing of rawbpf but [`crate::uapi`], so the pin
//! layout ([`crate::pins`]), netlink ([`crate::tc`]), the errors and
//! [`crate::attach`] can all name a hook without importing each other.

use crate::uapi::ProgramType;

/// Where on a device a chain's entry program is hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Hook {
    /// A TC hook on received packets (clsact ingress or TCX ingress).
    #[default]
    Ingress,
    /// A TC hook on sent packets (clsact egress or TCX egress).
    Egress,
    /// The device's XDP program (`IFLA_XDP`): received packets, before the
    /// kernel builds a socket buffer.
    Xdp,
}

impl Hook {
    /// Every hook, in the order rawbpf lists them.
    pub const ALL: [Hook; 3] = [Hook::Ingress, Hook::Egress, Hook::Xdp];

    /// "ingress", "egress" or "xdp".
    pub fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
            Hook::Xdp => "xdp",
        }
    }

    /// The TC direction, for the TC hooks.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Hook::Ingress => Some(Direction::Ingress),
            Hook::Egress => Some(Direction::Egress),
            Hook::Xdp => None,
        }
    }

    /// The program type the hook runs.
    pub fn program_type(self) -> ProgramType {
        match self {
            Hook::Xdp => ProgramType::XDP,
            _ => ProgramType::SCHED_CLS,
        }
    }

    /// The hook in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Hook::Xdp => "a device's XDP hook",
            _ => "a TC hook (ingress or egress)",
        }
    }

    /// The hook a program of type `t` attaches to, if it is a device hook.
    pub fn for_program(t: ProgramType) -> Option<Hook> {
        match t {
            ProgramType::SCHED_CLS => Some(Hook::Ingress),
            ProgramType::XDP => Some(Hook::Xdp),
            _ => None,
        }
    }
}

/// Which way packets go through a clsact filter (or a TCX link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Packets the device receives (`ffff:fff2`).
    Ingress,
    /// Packets the device sends (`ffff:fff3`).
    Egress,
}

impl Direction {
    /// The filter's parent handle on clsact: major `ffff`, minor
    /// `TC_H_MIN_INGRESS` (`fff2`) or `TC_H_MIN_EGRESS` (`fff3`).
    pub fn parent(self) -> u32 {
        0xFFFF_0000 | u32::from(self.parent_minor())
    }

    /// The minor number of [`Direction::parent`].
    pub fn parent_minor(self) -> u16 {
        match self {
            Direction::Ingress => 0xFFF2,
            Direction::Egress => 0xFFF3,
        }
    }

    /// "ingress" or "egress".
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_clsacts_minors() {
        assert_eq!(Direction::Ingress.parent(), 0xFFFF_FFF2);
        assert_eq!(Direction::Egress.parent(), 0xFFFF_FFF3);
    }

    #[test]
    fn hooks_name_their_program_type() {
        for hook in Hook::ALL {
            let back = Hook::for_program(hook.program_type()).unwrap();
            assert_eq!(back.program_type(), hook.program_type());
        }
    }
}
