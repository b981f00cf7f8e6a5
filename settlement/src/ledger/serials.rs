//! Registry serial numbers: a prefix and a zero-padded number.

/// `VCS-2451-2023-000000001` → (`VCS-2451-2023-`, 1, 9).
#[must_use]
pub fn split_serial(serial: &str) -> Option<(String, i64, usize)> {
    let digits = serial.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let (prefix, number) = serial.split_at(serial.len() - digits);
    Some((prefix.to_string(), number.parse().ok()?, digits))
}

/// A serial number from a block's prefix, number and width.
#[must_use]
pub fn serial(prefix: &str, number: i64, width: usize) -> String {
    format!("{prefix}{number:0width$}")
}
