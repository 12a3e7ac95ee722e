//! Terminal names from the device number of /proc/PID/stat, as ps prints them, without a scan
//! of /dev: the numbers of the terminals that matter are fixed (Documentation/admin-guide/
//! devices.txt).

/// `pts/3`, `tty1`, `ttyS0`, or `MAJOR:MINOR` for other devices; `None` for no terminal.
pub fn name(tty_nr: u32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    // The kernel's new_encode_dev: minor bits 0-7 and 20-31, major bits 8-19.
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0x000f_ff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".to_owned(),
        _ => format!("{major}:{minor}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_terminals() {
        let cases = [
            (0, None),
            (34816, Some("pts/0")),
            (34817, Some("pts/1")),
            (35072, Some("pts/256")),
            (1025, Some("tty1")),
            (1088, Some("ttyS0")),
            (1281, Some("console")),
            (0x0010_c805, Some("200:261")),
        ];
        for (number, expected) in cases {
            assert_eq!(name(number).as_deref(), expected, "{number}");
        }
    }
}
