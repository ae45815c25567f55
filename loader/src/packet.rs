//! Test packets: the built-in frame `rawbpf run` uses without `--data-in`.

/// Length of the built-in frame.
pub const TEST_FRAME_LEN: usize = 64;

/// A 64-byte Ethernet/IPv4/UDP frame: 02:00:00:00:00:01 → 02:00:00:00:00:02,
/// 10.0.0.1:40000 → 10.0.0.2:4242, TTL 64, the given TOS, a valid IPv4
/// header checksum and a 22-byte payload.
pub fn ipv4_udp_frame(tos: u8) -> [u8; TEST_FRAME_LEN] {
    let mut f = [0u8; TEST_FRAME_LEN];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[1] = tos;
    ip[2..4].copy_from_slice(&((TEST_FRAME_LEN - 14) as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64;
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&4242u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((TEST_FRAME_LEN - 34) as u16).to_be_bytes());
    f[42..].copy_from_slice(b"rawbpf test payload...");
    f
}

/// The IPv4 header checksum of `header` with its checksum field taken as zero.
/// A header whose stored checksum is right gives back that checksum.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, pair) in header.chunks(2).enumerate() {
        if i == 5 {
            continue; // the checksum field itself
        }
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_a_valid_checksum() {
        let f = ipv4_udp_frame(0);
        let stored = u16::from_be_bytes([f[24], f[25]]);
        assert_eq!(ipv4_checksum(&f[14..34]), stored);
        assert_ne!(stored, 0);
        let g = ipv4_udp_frame(1);
        assert_ne!(u16::from_be_bytes([g[24], g[25]]), stored);
    }
}
